"""Cutting the recorded action potentials out of the voltage the ARX model is fitted to.

Each recorded spike (time ``t_sp`` of its upward 0 mV crossing) occupies the bins
overlapping ``[t_sp - cut_before_s, t_sp + cut_after_s]``; these bins are replaced
by a straight line between the bin just before (the *onset* bin, the last
subthreshold one) and the bin just after (the after-hyperpolarisation). The spike
indicator ``s`` is 1 at the onset bin: that is the bin at which the free-running
model, crossing its threshold, emits a spike, and the spike-history terms then learn
the reset along that line and the after-potential that follows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CutVoltage:
    """Binned voltage of one repetition with its spikes removed."""

    voltage_mV: np.ndarray  #: spike-free voltage, one value per model bin of the window.
    onsets: np.ndarray  #: indices (bins, relative to the window's first bin) of the spike onsets.
    cut: np.ndarray  #: True for the bins that were replaced by the straight line.


def cut_spikes(voltage_mV: np.ndarray, spike_times_s: np.ndarray, step_s: float, t0_s: float,
               cut_before_s: float, cut_after_s: float) -> CutVoltage:
    """Remove the spikes of one binned repetition.

    Args:
        voltage_mV: binned voltage (mV), bin ``k`` covering ``t0_s + [k, k+1) * step_s``.
        spike_times_s: recorded spike times (s, absolute).
        step_s: bin width (s).
        t0_s: time of the first bin's start (s).
        cut_before_s, cut_after_s: what is cut before and after each crossing (s).
    """
    v = np.array(voltage_mV, dtype=np.float64)
    n = v.size
    cut = np.zeros(n, dtype=bool)
    onsets = []
    first = np.floor((np.asarray(spike_times_s) - t0_s - cut_before_s) / step_s).astype(int)
    last = np.floor((np.asarray(spike_times_s) - t0_s + cut_after_s) / step_s).astype(int)
    for k0, k1 in zip(first, last):
        k0, k1 = max(k0, 1), min(k1, n - 2)
        if k1 < k0:
            continue
        cut[k0 : k1 + 1] = True
        onsets.append(k0 - 1)
    # interpolate every run of cut bins (overlapping spikes merge into one run)
    idx = np.flatnonzero(cut)
    if idx.size:
        keep = np.flatnonzero(~cut)
        v[idx] = np.interp(idx, keep, v[keep])
    return CutVoltage(v, np.unique(np.array(onsets, dtype=int)), cut)
