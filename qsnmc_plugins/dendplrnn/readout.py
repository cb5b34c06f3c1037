"""Spike times from the network's predicted voltage, and their held-out score."""
from __future__ import annotations

import numpy as np

from qsnmc import InvalidPrediction, coincidence_factor, intrinsic_reliability
from qsnmc import spike_times_from_voltage


def predicted_spikes(voltage_mV: np.ndarray, dt_s: float, threshold_mV: float, t0_s: float,
                     window_s: tuple[float, float]) -> np.ndarray:
    """Upward crossings of ``threshold_mV`` by the predicted voltage (the harness's own
    detector, on the network's grid), kept inside ``window_s``."""
    t = spike_times_from_voltage(voltage_mV, dt_s, threshold_mV=threshold_mV, t0_s=t0_s)
    return t[(t >= window_s[0]) & (t < window_s[1])]


def normalised_gamma(recorded: list[np.ndarray], predicted: np.ndarray, delta_s: float, duration_s: float,
                     reliability: float | None = None) -> float:
    """Mean Gamma_i / R of one predicted train against every recording (-1 for an invalid rate)."""
    if reliability is None:
        reliability = intrinsic_reliability(recorded, delta_s, duration=duration_s)
    try:
        g = [coincidence_factor(r, predicted, delta_s, duration=duration_s) for r in recorded]
    except InvalidPrediction:
        return -1.0
    return float(np.mean(g) / reliability)


def choose_readout(voltage_mV: np.ndarray, dt_s: float, t0_s: float, recorded: list[np.ndarray],
                   window_s: tuple[float, float], delta_s: float, thresholds_mV, shifts_s) -> tuple[float, float, float]:
    """Detection threshold (mV) and time shift (s) that maximise mean Gamma/R of a free run.

    The shift corrects the network grid's bias: a max-pooled step k covers
    ``[k dt, (k + 1) dt)`` while the crossing is interpolated between steps k-1 and k.

    Returns:
        (threshold_mV, shift_s, Gamma/R at that choice).
    """
    duration = window_s[1] - window_s[0]
    reliability = intrinsic_reliability(recorded, delta_s, duration=duration)
    best = (-np.inf, float(thresholds_mV[0]), 0.0)
    for th in thresholds_mV:
        t = predicted_spikes(voltage_mV, dt_s, float(th), t0_s, (window_s[0] - 1.0, window_s[1] + 1.0))
        for sh in shifts_s:
            ts = t + sh
            ts = ts[(ts >= window_s[0]) & (ts < window_s[1])]
            g = normalised_gamma(recorded, ts, delta_s, duration, reliability)
            if g > best[0]:
                best = (g, float(th), float(sh))
    return best[1], best[2], best[0]
