"""Spike trains cut to a window, and the intrinsic reliability of a stretch.

One window convention for every built-in: a window ``(start_s, stop_s)`` is half-open,
``start_s <= t < stop_s``, as :meth:`qsnmc.TrainingData.time_split` cuts a recording.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from qsnmc.scoring.metrics import intrinsic_reliability


def clip_to_window(spike_times_s: np.ndarray, window_s: tuple[float, float]) -> np.ndarray:
    """The spike times (s) with ``start_s <= t < stop_s``."""
    t = np.asarray(spike_times_s, dtype=np.float64)
    return t[(t >= window_s[0]) & (t < window_s[1])]


def stretch_reliability(recordings: Sequence[np.ndarray], window_s: tuple[float, float], delta_s: float) -> float:
    """R of the recordings' spikes inside ``window_s`` (s); NaN with fewer than 2 repetitions."""
    if len(recordings) < 2:
        return float("nan")
    return intrinsic_reliability([clip_to_window(t, window_s) for t in recordings], delta_s,
                                 duration=window_s[1] - window_s[0])
