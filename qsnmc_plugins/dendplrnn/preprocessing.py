"""From recordings to the network's steps of ``dt_model = factor * dt`` (default 1 ms) and standardised
units: the voltage max-pooled per step and clipped (:mod:`qsnmc_plugins.hazard.voltage`), the current
averaged per step (numpy only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsnmc import block_mean

from qsnmc_plugins.hazard.voltage import VoltageScaling


@dataclass(frozen=True)
class Scaling(VoltageScaling):
    """Affine maps between physical units and the network's standardised units: the voltage's
    (:class:`~qsnmc_plugins.hazard.voltage.VoltageScaling`) and the current's."""

    i_mean_pA: float  #: mean of the training current (pA)
    i_sd_pA: float  #: its SD (pA)

    def current(self, current_pA: np.ndarray) -> np.ndarray:
        """Injected current (pA, recording grid) -> block-averaged, standardised (float32)."""
        i = block_mean(np.asarray(current_pA, np.float64), self.factor)
        return ((i - self.i_mean_pA) / self.i_sd_pA).astype(np.float32)
