"""Checkpoints of a network in training: the weights' moving average and the best state on held-out data."""
from __future__ import annotations

import copy
import math
from typing import Any


def averaging_decay(decay: float, n: float) -> float:
    """Decay of the weights' moving average after ``n`` updates: ``min(decay, (1 + n) / (10 + n))``,
    so that short fits are not dominated by the untrained initial weights."""
    return min(decay, (1.0 + n) / (10.0 + n))


class BestCheckpoint:
    """The checkpoint of highest held-out score so far: its score, step and a copy of the network's state."""

    def __init__(self, state: dict | None = None) -> None:
        self.score = -math.inf
        self.step = 0
        self.state = copy.deepcopy(state)

    def offer(self, step: int, score: float, net: Any, keep: bool = False) -> None:
        """Keep ``net``'s state if ``score`` beats the best so far (or ``keep`` says to)."""
        if keep or score > self.score:
            self.score, self.step, self.state = score, step, copy.deepcopy(net.state_dict())
