"""The training recordings in the map's units: one :class:`Series` per repetition."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsnmc import TrainingStimulus, block_mean
from qsnmc_plugins.ddf.features import Standardiser


@dataclass
class Series:
    """One recorded repetition of one training stimulus, standardised.

    The map works on a coarse grid: coarse sample ``k`` is the mean of the ``step``
    recorded samples starting at protocol sample ``start_sample + k * step``.
    """

    stimulus: str  #: the stimulus' name.
    repetition: int  #: the repetition's index.
    start_sample: int  #: protocol (fine) sample index where coarse sample 0's block starts.
    fine_dt_s: float  #: the recording's sampling step (s).
    step: int  #: recorded samples per coarse sample.
    v: np.ndarray  #: standardised block-mean voltage in the training window ``(n,)``.
    #: standardised current ``[i(n), i(n+1)]`` for each step ``n -> n+1`` ``(n, 2)`` (the last entry uses the
    #: current just after the window, or repeats the last sample)
    drive: np.ndarray
    spike_state: np.ndarray  #: True near a recorded spike (see :func:`spike_state_mask`) ``(n,)``.
    spike_times_s: np.ndarray  #: recorded spike times (s, absolute).

    @property
    def n_samples(self) -> int:
        return int(self.v.size)

    @property
    def dt_s(self) -> float:
        """The map's (coarse) time step (s)."""
        return self.fine_dt_s * self.step

    def centre_s(self, sample: int) -> float:
        """Absolute time (s) a block mean stands for: the middle of coarse sample ``sample``'s block."""
        return block_centre_s(self.start_sample + sample * self.step, self.step, self.fine_dt_s)


def block_centre_s(fine_sample: int, step: int, fine_dt_s: float) -> float:
    """Time (s) of the middle of the block of ``step`` samples starting at ``fine_sample``."""
    return (fine_sample + 0.5 * (step - 1)) * fine_dt_s


def window_drive(stim_current_pA: np.ndarray, start: int, n: int, std: Standardiser, step: int) -> np.ndarray:
    """Standardised drive ``(n, 2)`` for the ``n`` coarse steps from protocol sample ``start``.

    The current of each coarse sample is the mean over its block of ``step`` samples
    (past the protocol's end the last sample is repeated); step n gets ``[i(n), i(n+1)]``.
    Clark et al. (2022) enter ``(I(n) + I(n+1)) / 2`` with one weight; with a current held
    constant between samples (zero-order hold) only one of the two samples drives the
    step, and the average then injects half of the wrong sample (about 0.1 mV of error per
    step for a 3 ms OU current). Both samples therefore get their own weight; the
    regression recovers the average when that is right.
    """
    need = (n + 1) * step
    cur = np.asarray(stim_current_pA[start : start + need], dtype=np.float64)
    if cur.size < need:
        cur = np.concatenate([cur, np.full(need - cur.size, cur[-1] if cur.size else 0.0)])
    i = std.i(block_mean(cur, step))
    return np.column_stack([i[:-1], i[1:]])


def spike_state_mask(spike_times_s: np.ndarray, start_s: float, dt_s: float, n: int,
                     window_s: tuple[float, float]) -> np.ndarray:
    """Boolean mask of the samples from ``window_s[0]`` before to ``window_s[1]`` after each spike (s).

    ``start_s`` is the time sample 0 stands for, ``dt_s`` the sampling step (s).
    """
    mask = np.zeros(n, dtype=bool)
    before, after = window_s
    for t in np.asarray(spike_times_s):
        a = max(int(np.floor((t - start_s - before) / dt_s)), 0)
        b = min(int(np.ceil((t - start_s + after) / dt_s)), n)
        mask[a:b] = True
    return mask


def stimulus_series(stim: TrainingStimulus, std: Standardiser, repetitions: list[int], step: int,
                    spike_state_window_s: tuple[float, float]) -> list[Series]:
    """The :class:`Series` of the chosen repetitions of one training stimulus.

    The voltage is averaged over blocks of ``step`` samples (the map's time step is ``step * dt``).
    """
    start = stim.window_slice.start
    n = stim.voltage_mV.shape[1] // step
    drive = window_drive(stim.current_pA, start, n, std, step)
    t_first = block_centre_s(start, step, stim.dt_s)
    out = []
    for r in repetitions:
        spikes = np.asarray(stim.spike_times_s[r])
        out.append(Series(stimulus=stim.name, repetition=int(r), start_sample=start, fine_dt_s=stim.dt_s, step=step,
                          v=std.v(block_mean(stim.voltage_mV[r], step)), drive=drive,
                          spike_state=spike_state_mask(spikes, t_first, stim.dt_s * step, n, spike_state_window_s),
                          spike_times_s=spikes))
    return out
