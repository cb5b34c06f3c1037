"""From 10 kHz recordings to the network's time grid and units (numpy only).

The network runs at ``dt_model = factor * dt`` (default 1 ms). Within each block of
``factor`` samples the current is averaged and the voltage is max-pooled, so that a
spike (about 1 ms wide at 0 mV) always leaves its peak in the block that holds it.
The voltage is then clipped at ``clip_mV`` (spike peaks become a plateau: the
network has to learn *when* the upstroke happens, not the 100 mV peak shape) and
both signals are standardised (zero mean, unit SD).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qsnmc import block_max, block_mean

from qsnmc_plugins.hazard.voltage import spike_weights  # noqa: F401  (the dendplrnn's loss weights)


@dataclass(frozen=True)
class Scaling:
    """Affine maps between physical units and the network's standardised units."""

    factor: int  #: samples of the recording per network step
    clip_mV: float  #: voltage clipping level (mV)
    v_mean_mV: float  #: mean of the clipped, pooled training voltage (mV)
    v_sd_mV: float  #: its SD (mV)
    i_mean_pA: float  #: mean of the training current (pA)
    i_sd_pA: float  #: its SD (pA)

    @classmethod
    def fit(cls, voltage_mV: np.ndarray, current_pA: np.ndarray, factor: int, clip_mV: float) -> "Scaling":
        v = np.minimum(block_max(np.asarray(voltage_mV), factor), clip_mV)
        return cls(factor, float(clip_mV), float(v.mean()), float(v.std()) or 1.0,
                   float(np.mean(current_pA)), float(np.std(current_pA)) or 1.0)

    def voltage(self, voltage_mV: np.ndarray) -> np.ndarray:
        """Recorded voltage (mV, recording grid) -> pooled, clipped, standardised (float32)."""
        v = np.minimum(block_max(np.asarray(voltage_mV, np.float64), self.factor), self.clip_mV)
        return ((v - self.v_mean_mV) / self.v_sd_mV).astype(np.float32)

    def current(self, current_pA: np.ndarray) -> np.ndarray:
        """Injected current (pA, recording grid) -> block-averaged, standardised (float32)."""
        i = block_mean(np.asarray(current_pA, np.float64), self.factor)
        return ((i - self.i_mean_pA) / self.i_sd_pA).astype(np.float32)

    def to_mV(self, x: np.ndarray) -> np.ndarray:
        """Standardised network voltage -> mV."""
        return np.asarray(x, np.float64) * self.v_sd_mV + self.v_mean_mV

    def from_mV(self, v_mV: float) -> float:
        """A voltage level (mV) in standardised units."""
        return (float(v_mV) - self.v_mean_mV) / self.v_sd_mV

    def as_record(self) -> dict:
        return asdict(self)
