"""Spike times from the network's predicted voltage (threshold crossings), and their Gamma/R."""
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
