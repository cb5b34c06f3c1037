"""Downsampling of recordings to the model step, and spike times to bin indices.

The ARX model runs at :data:`MODEL_STEP_S` = 1 ms: a quarter of the 4 ms
coincidence window (2009 rules), so that a spike time rounded to a bin is off by
at most 0.5 ms before the sub-bin interpolation of the threshold crossing. A 10 kHz
recording is block-averaged 10 samples to a bin (the average is the anti-aliasing
filter); a 1 kHz recording (2007 style) is used as it is.
"""
from __future__ import annotations

import numpy as np

#: model step (s)
MODEL_STEP_S = 0.001


def bin_factor(dt_s: float, step_s: float = MODEL_STEP_S) -> int:
    """Number of recorded samples (step ``dt_s``, s) averaged into one model bin."""
    return max(1, int(round(step_s / dt_s)))


def block_mean(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean over consecutive blocks of ``factor`` samples along the last axis (a partial last block is dropped)."""
    x = np.asarray(x, dtype=np.float64)
    if factor == 1:
        return x.copy()
    n = x.shape[-1] // factor * factor
    return x[..., :n].reshape(*x.shape[:-1], -1, factor).mean(axis=-1)


def bin_centre_s(k: np.ndarray | int, step_s: float) -> np.ndarray:
    """Time (s) of the centre of bin ``k`` (bin ``k`` covers ``[k*step, (k+1)*step)``)."""
    return (np.asarray(k, dtype=np.float64) + 0.5) * step_s
