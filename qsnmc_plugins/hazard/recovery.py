"""Going back in a network's training: to the last good state after a non-finite loss (a restart), to
the state at the best checkpoint after a held-out collapse (a rollback); the caller lowers the rate."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


class TrainingDiverged(RuntimeError):
    """The loss stayed non-finite after every restart from the last good state at a lower learning rate."""


@dataclass(frozen=True)
class Snapshot:
    """Deep copies of a run's parts' state dicts (None for an absent part) at optimiser step ``step``."""

    step: int
    states: tuple


class Snapshots:
    """A training run's parts (network, optimiser, weight average: objects with ``state_dict`` and
    ``load_state_dict``, or None) and two snapshots of them: ``good``, the last state to restart from,
    and ``at_best``, the state at the best checkpoint so far (None before one).

    A snapshot stays as it was taken: :meth:`load` hands the parts copies (an optimiser would
    otherwise keep the snapshot's own state tensors and update them in place), so a second rollback
    to the same state returns to the same moments.
    """

    def __init__(self, *parts: Any) -> None:
        self.parts = parts
        self.good = self.take(0)
        self.at_best: Snapshot | None = None

    def take(self, step: int) -> Snapshot:
        return Snapshot(step, tuple(None if p is None else copy.deepcopy(p.state_dict()) for p in self.parts))

    def load(self, snapshot: Snapshot) -> int:
        """Load ``snapshot`` into the parts; its step."""
        for part, state in zip(self.parts, snapshot.states):
            if part is not None:
                part.load_state_dict(copy.deepcopy(state))
        return snapshot.step

    def collapsed(self, score: float, best_score: float, rollback_drop: float, rollbacks: int,
                  max_rollbacks: int) -> bool:
        """A held-out score more than ``rollback_drop`` (> 0) below the best so far, with a best state to
        go back to and fewer than ``max_rollbacks`` rollbacks done."""
        return (rollback_drop > 0 and self.at_best is not None and score < best_score - rollback_drop
                and rollbacks < max_rollbacks)
