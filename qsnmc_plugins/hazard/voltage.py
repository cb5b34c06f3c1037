"""The recorded voltage as a training target on the network's bins (numpy only).

Within each bin the voltage is max-pooled, so that a spike (about 1 ms wide at 0 mV) always
leaves its peak in the bin that holds it; it is then clipped at ``clip_mV`` (spike peaks
become a plateau: a network has to learn *when* the upstroke happens, not the 100 mV peak's
shape) and standardised. Spike bins are weighted up in the loss (:func:`spike_weights`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qsnmc import block_max


@dataclass(frozen=True)
class VoltageScaling:
    """Recorded voltage (mV, recording grid) -> pooled, clipped, standardised bins."""

    factor: int  #: recording samples per bin
    clip_mV: float  #: clipping level (mV)
    v_mean_mV: float  #: mean of the pooled, clipped fit-part voltage (mV)
    v_sd_mV: float  #: its SD (mV)

    @classmethod
    def fit(cls, voltages_mV: list[np.ndarray], factor: int, clip_mV: float) -> "VoltageScaling":
        """From the fit part's voltages (mV; one (n_reps, n_samples) array per stimulus)."""
        v = np.concatenate([np.minimum(block_max(np.asarray(x, np.float64), factor), clip_mV).ravel()
                            for x in voltages_mV])
        return cls(factor, float(clip_mV), float(v.mean()), float(v.std()) or 1.0)

    def voltage(self, voltage_mV: np.ndarray) -> np.ndarray:
        """(n_reps, n_samples) mV -> (n_reps, n_bins) standardised, float32."""
        v = np.minimum(block_max(np.asarray(voltage_mV, np.float64), self.factor), self.clip_mV)
        return ((v - self.v_mean_mV) / self.v_sd_mV).astype(np.float32)

    def to_mV(self, x: np.ndarray) -> np.ndarray:
        """Standardised voltage -> mV."""
        return np.asarray(x, np.float64) * self.v_sd_mV + self.v_mean_mV

    def from_mV(self, v_mV: float) -> float:
        """A voltage level (mV) in standardised units."""
        return (float(v_mV) - self.v_mean_mV) / self.v_sd_mV

    def as_record(self) -> dict:
        return asdict(self)


def spike_weights(spike_times_s: list[np.ndarray], n_steps: int, dt_model_s: float, t0_s: float,
                  spike_share: float) -> np.ndarray:
    """Per-step loss weights (n_reps, n_steps) that give spike steps ``spike_share`` of the loss.

    Spikes occupy about 1 % of the steps, so a plain MSE can settle on a network that
    never spikes. The step holding each recorded spike and the one before it (the
    upstroke) get a weight ``w`` chosen so that they carry ``spike_share`` of the total
    weight; every other step has weight 1.
    """
    mask = np.zeros((len(spike_times_s), n_steps), dtype=bool)
    for r, ts in enumerate(spike_times_s):
        k = np.floor((np.asarray(ts) - t0_s) / dt_model_s).astype(int)
        for shift in (0, -1):
            kk = k + shift
            mask[r, kk[(kk >= 0) & (kk < n_steps)]] = True
    frac = mask.mean()
    w = np.ones(mask.shape, np.float32)
    if 0 < frac < 1:
        w[mask] = spike_share * (1 - frac) / ((1 - spike_share) * frac)
    return w
