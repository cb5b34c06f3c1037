"""From 10 kHz recordings to the network's time grid and units (numpy only).

The network runs at ``dt_model = factor * dt`` (default 1 ms). Within each block of
``factor`` samples the current is averaged and the voltage is max-pooled, so that a
spike (about 1 ms wide at 0 mV) always leaves its peak in the block that holds it.
The voltage is then clipped at ``clip_mV`` (spike peaks become a plateau: the
network has to learn *when* the upstroke happens, not the 100 mV peak shape) and
both signals are standardised (zero mean, unit SD).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsnmc import block_max, block_mean

from qsnmc_plugins.hazard.voltage import VoltageScaling


@dataclass(frozen=True)
class Scaling(VoltageScaling):
    """Affine maps between physical units and the network's standardised units: the voltage's
    (:class:`~qsnmc_plugins.hazard.voltage.VoltageScaling`) and the current's."""

    i_mean_pA: float  #: mean of the training current (pA)
    i_sd_pA: float  #: its SD (pA)

    @classmethod
    def fit(cls, voltage_mV: np.ndarray, current_pA: np.ndarray, factor: int, clip_mV: float) -> "Scaling":
        """From one recording: voltage (mV, (n_reps, n_samples)) and current (pA)."""
        v = np.minimum(block_max(np.asarray(voltage_mV), factor), clip_mV)
        return cls(factor, float(clip_mV), float(v.mean()), float(v.std()) or 1.0,
                   float(np.mean(current_pA)), float(np.std(current_pA)) or 1.0)

    def current(self, current_pA: np.ndarray) -> np.ndarray:
        """Injected current (pA, recording grid) -> block-averaged, standardised (float32)."""
        i = block_mean(np.asarray(current_pA, np.float64), self.factor)
        return ((i - self.i_mean_pA) / self.i_sd_pA).astype(np.float32)
