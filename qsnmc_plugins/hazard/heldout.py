"""Held-out Gamma/R with each stimulus' R computed once (for the many readout candidates).

Mirrors :class:`qsnmc.ValidationScore`'s P (mean Gamma/R over stimuli whose held-out R is at
least the floor, equal weights; mean raw Gamma when none is; -1 for an invalid prediction);
the fit record's per-stimulus figures come from :func:`qsnmc.score_heldout` itself.
"""
from __future__ import annotations

import numpy as np

from qsnmc import HeldOutStimulus, InvalidPrediction, coincidence_factor, intrinsic_reliability

R_FLOOR = 0.3


class HeldOutScorer:
    """P of one deterministic train per held-out stimulus, against every repetition."""

    def __init__(self, heldout: tuple[HeldOutStimulus, ...], delta_s: float) -> None:
        self.heldout = {h.name: h for h in heldout}
        self.delta_s = delta_s
        self.reliability = {
            h.name: (intrinsic_reliability(h.spike_times_s, delta_s, duration=h.stimulus.duration_s)
                     if len(h.spike_times_s) >= 2 else float("nan"))
            for h in heldout
        }

    def gamma(self, name: str, predicted: np.ndarray) -> float:
        h = self.heldout[name]
        try:
            return float(np.mean([coincidence_factor(r, predicted, self.delta_s, duration=h.stimulus.duration_s)
                                  for r in h.spike_times_s]))
        except InvalidPrediction:
            return -1.0

    def __call__(self, predictions: dict[str, np.ndarray]) -> float:
        normalised, raw = [], []
        for name in self.heldout:
            g = self.gamma(name, predictions.get(name, np.empty(0)))
            raw.append(g)
            r = self.reliability[name]
            if np.isfinite(r) and r >= R_FLOOR and r > 0:
                normalised.append(g / r)
        return float(np.mean(normalised)) if normalised else float(np.mean(raw))
