"""Training data on the model's time grid: current and voltage averaged over steps, spikes as step indices.

The model runs at a step of about ``model_step_s`` (a whole number of recording samples, at
least one: :func:`qsnmc.samples_per_step`), so that a 10 kHz recording gives a 0.5 ms grid at
the default 0.5 ms and a 1 kHz one stays at 1 ms. Bin ``n`` covers protocol time ``[n h, (n + 1) h)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsnmc import TrainingStimulus, block_mean, samples_per_step


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


def bin_stimulus(stim: TrainingStimulus, latency_s: float, model_step_s: float) -> BinnedStimulus:
    """Put a training stimulus on the model grid of about ``model_step_s`` (s).

    ``latency_s``: the model's spike event precedes the recorded spike (the 0 mV crossing)
    by this much (s): the spike bins are those of the recorded times minus the latency.
    """
    factor = samples_per_step(stim.dt_s, model_step_s)
    step = stim.dt_s * factor
    first = int(round(stim.window_s[0] / step))
    volt = block_mean(stim.voltage_mV, factor)
    n = volt.shape[1]
    current = block_mean(stim.current_pA[: (first + n) * factor], factor)
    spikes = tuple(
        np.unique(np.floor((np.asarray(t) - latency_s - stim.window_s[0]) / step + 1e-9).astype(np.int64)) for t in stim.spike_times_s
    )
    spikes = tuple(s[(s >= 0) & (s < n)] for s in spikes)
    return BinnedStimulus(stim.name, step, current, first, volt, spikes)
