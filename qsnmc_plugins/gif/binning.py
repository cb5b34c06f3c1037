"""Training data on the model's time grid: current and voltage averaged over steps, spikes as step indices.

The model runs at a step of about :data:`MODEL_STEP_S` (a whole number of recording samples,
at least one), so that a 10 kHz recording gives a 0.5 ms grid and a 1 kHz one stays at 1 ms.
Bin ``n`` covers protocol time ``[n h, (n + 1) h)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsnmc import TrainingStimulus

#: the model's target time step (s)
MODEL_STEP_S = 0.0005


def step_factor(dt_s: float) -> int:
    """Recording samples per model step."""
    return max(1, int(round(MODEL_STEP_S / dt_s)))


def bin_mean(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean of consecutive blocks of ``factor`` samples along the last axis (a partial last block is dropped)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1] // factor
    return x[..., : n * factor].reshape(*x.shape[:-1], n, factor).mean(axis=-1)


@dataclass(frozen=True, eq=False)
class BinnedStimulus:
    """One training stimulus on the model grid.

    Attributes:
        name: the stimulus' name.
        step_s: model step (s).
        current_pA: binned current from protocol time 0 to the end of the window (pA).
        first_bin: bin index of the window start.
        voltage_mV: ``(n_repetitions, n_window_bins)`` binned recorded voltage (mV).
        spike_bins: per repetition, the window-relative bins of the recorded spikes.
    """

    name: str
    step_s: float
    current_pA: np.ndarray
    first_bin: int
    voltage_mV: np.ndarray
    spike_bins: tuple[np.ndarray, ...]

    @property
    def n_bins(self) -> int:
        return int(self.voltage_mV.shape[1])

    @property
    def window_current_pA(self) -> np.ndarray:
        return self.current_pA[self.first_bin : self.first_bin + self.n_bins]


def bin_stimulus(stim: TrainingStimulus, latency_s: float = 0.0) -> BinnedStimulus:
    """Put a training stimulus on the model grid.

    ``latency_s``: the model's spike event precedes the recorded spike (the 0 mV crossing)
    by this much (s): the spike bins are those of the recorded times minus the latency.
    """
    factor = step_factor(stim.dt_s)
    step = stim.dt_s * factor
    first = int(round(stim.window_s[0] / step))
    volt = bin_mean(stim.voltage_mV, factor)
    n = volt.shape[1]
    current = bin_mean(stim.current_pA[: (first + n) * factor], factor)
    spikes = tuple(
        np.unique(np.floor((np.asarray(t) - latency_s - stim.window_s[0]) / step + 1e-9).astype(np.int64)) for t in stim.spike_times_s
    )
    spikes = tuple(s[(s >= 0) & (s < n)] for s in spikes)
    return BinnedStimulus(stim.name, step, current, first, volt, spikes)
