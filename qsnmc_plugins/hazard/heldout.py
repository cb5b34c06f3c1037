"""Held-out P of many candidate trains, with each held-out stimulus' R computed once.

The score is the core's (:func:`qsnmc.score_trains` per stimulus, :class:`qsnmc.ValidationScore`'s
P over them); only R, the costly part, is cached here, because a readout search scores
hundreds of candidates on the same held-out stimuli.
"""
from __future__ import annotations

import numpy as np

from qsnmc import HeldOutStimulus, ValidationScore, intrinsic_reliability, score_trains


class HeldOutScorer:
    """P of one deterministic train per held-out stimulus (spike times in s), against every repetition."""

    def __init__(self, heldout: tuple[HeldOutStimulus, ...], delta_s: float) -> None:
        self.heldout = tuple(heldout)
        self.delta_s = delta_s
        self.reliability = {
            h.name: (intrinsic_reliability(h.spike_times_s, delta_s, duration=h.stimulus.duration_s)
                     if len(h.spike_times_s) >= 2 else float("nan"))
            for h in self.heldout
        }

    def validation(self, predictions: dict[str, np.ndarray]) -> ValidationScore:
        """The core's score of ``predictions`` (a missing stimulus counts as no spike)."""
        return ValidationScore(tuple(
            score_trains(h.name, h.spike_times_s, predictions.get(h.name, np.empty(0)), h.stimulus.window_s,
                         self.delta_s, reliability=self.reliability[h.name])
            for h in self.heldout))

    def __call__(self, predictions: dict[str, np.ndarray]) -> float:
        return self.validation(predictions).performance
