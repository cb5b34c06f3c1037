"""Spike detection in a recorded (or predicted) membrane voltage."""
from __future__ import annotations

import numpy as np


def spike_times_from_voltage(
    voltage_mV: np.ndarray,
    dt_s: float,
    threshold_mV: float = 0.0,
    t0_s: float = 0.0,
) -> np.ndarray | list[np.ndarray]:
    """Times (s) at which the voltage crosses ``threshold_mV`` from below.

    One spike per crossing, as in the QSNMC 2009 instructions: a sample pair
    ``v[k-1] < threshold <= v[k]`` is a crossing, so the next one can only come
    after the voltage has gone back below the threshold. The crossing time is
    interpolated linearly between the two samples.

    Args:
        voltage_mV: shape ``(n_samples,)``, or ``(n_repetitions, n_samples)`` for one
            train per row.
        dt_s: sampling step (s).
        threshold_mV: detection threshold (mV); 0 mV in the competition.
        t0_s: time of sample 0 (s).

    Returns:
        A sorted float array of spike times (s), or a list of them for 2-D input.
    """
    v = np.asarray(voltage_mV, dtype=np.float64)
    if v.ndim == 2:
        return [spike_times_from_voltage(row, dt_s, threshold_mV, t0_s) for row in v]
    if v.ndim != 1:
        raise ValueError(f"voltage must be 1-D or 2-D, got shape {v.shape}")
    below = v[:-1] < threshold_mV
    k = np.flatnonzero(below & (v[1:] >= threshold_mV))  # crossing between k and k+1
    frac = (threshold_mV - v[k]) / (v[k + 1] - v[k])
    return t0_s + (k + frac) * dt_s
