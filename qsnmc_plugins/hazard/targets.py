"""The recurrent entries' spike target, the fraction of repetitions spiking per bin, and its base rate."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def spike_fraction(spike_times_s: Sequence[np.ndarray], n_bins: int, bin_s: float, t0_s: float = 0.0,
                   edge_tolerance: float = 0.0) -> np.ndarray:
    """Fraction of repetitions with at least one spike in each bin (n_bins,), float32; bin k covers
    ``[t0_s + k bin_s, t0_s + (k + 1) bin_s)`` (s). A spike less than ``edge_tolerance`` bins below a bin's
    start counts in that bin (spike times on the recording's sample grid fall on bin edges, where
    rounding of ``t / bin_s`` decides the bin)."""
    counts = np.zeros(n_bins, np.float64)
    for ts in spike_times_s:
        k = np.unique(np.floor((np.asarray(ts) - t0_s) / bin_s + edge_tolerance).astype(np.int64))
        counts[k[(k >= 0) & (k < n_bins)]] += 1.0
    return (counts / max(1, len(spike_times_s))).astype(np.float32)


def _clipped(base_rate: float) -> float:
    """The base rate (spike probability per bin) kept inside [1e-4, 0.5]."""
    return min(max(float(base_rate), 1e-4), 0.5)


def base_rate_logit(base_rate: float) -> float:
    """Log-odds of the (clipped) base rate: a hazard readout's initial bias."""
    p = _clipped(base_rate)
    return math.log(p / (1 - p))


def base_rate_entropy(base_rate: float) -> float:
    """Binary cross-entropy per bin of a constant (clipped) base rate against itself: the scale of the
    hazard's loss, against which the voltage's loss is weighed."""
    p = _clipped(base_rate)
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))
