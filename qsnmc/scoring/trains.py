"""Spike trains cut to a window, the samples around spikes, and the intrinsic reliability of a stretch.

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


def spike_window_mask(spike_indices: np.ndarray, n_samples: int, before: int, after: int) -> np.ndarray:
    """Boolean ``(n_samples,)``: True on the samples ``m - before`` to ``m + after`` (both included) around
    any spike at sample index ``m``; spikes may lie outside ``[0, n_samples)``. O(n) whatever the window."""
    edges = np.zeros(n_samples + 1, dtype=np.int64)
    m = np.asarray(spike_indices, dtype=np.int64)
    np.add.at(edges, np.clip(m - before, 0, n_samples), 1)
    np.add.at(edges, np.clip(m + after + 1, 0, n_samples), -1)
    return np.cumsum(edges[:n_samples]) > 0


def stretch_reliability(recordings: Sequence[np.ndarray], window_s: tuple[float, float], delta_s: float) -> float:
    """R of the recordings' spikes inside ``window_s`` (s); NaN with fewer than 2 repetitions."""
    if len(recordings) < 2:
        return float("nan")
    return intrinsic_reliability([clip_to_window(t, window_s) for t in recordings], delta_s,
                                 duration=window_s[1] - window_s[0])
