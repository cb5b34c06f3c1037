"""Resampling and causal filters of sampled signals (current in pA, voltage in mV).

Conventions, shared by every built-in:
- a *step* of ``step_s`` spans ``samples_per_step(dt_s, step_s)`` recording samples;
- block reductions run along the last axis and drop an incomplete tail block;
- a low-pass filter has unit DC gain and starts at steady state (``y_0 = x_0``), as if the
  signal had been constant before the first sample, unless given its value before the first sample.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from qsnmc.fitting.portable_exp import exp as portable_exp


def samples_per_step(dt_s: float, step_s: float) -> int:
    """Recording samples of ``dt_s`` (s) in one model step of ``step_s`` (s), at least 1."""
    if dt_s <= 0 or step_s <= 0:
        raise ValueError(f"sampling step and model step must be positive, got dt_s={dt_s}, step_s={step_s}")
    return max(1, int(round(step_s / dt_s)))


def _blocks(x: np.ndarray, factor: int) -> np.ndarray:
    if factor < 1:
        raise ValueError(f"block size must be at least 1, got {factor}")
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1] // factor
    return x[..., : n * factor].reshape(*x.shape[:-1], n, factor)


def block_mean(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean over consecutive blocks of ``factor`` samples along the last axis (tail dropped)."""
    return _blocks(x, factor).mean(axis=-1)


def block_max(x: np.ndarray, factor: int) -> np.ndarray:
    """Maximum over consecutive blocks of ``factor`` samples along the last axis (tail dropped)."""
    return _blocks(x, factor).max(axis=-1)


def lowpass(x: np.ndarray, dt_s: float, tau_s: float, initial: float | np.ndarray | None = None) -> np.ndarray:
    """Causal exponential low-pass filter with time constant ``tau_s`` (s) along the last axis.

    ``y_k = a y_{k-1} + (1 - a) x_k`` with ``a = exp(-dt_s / tau_s)`` (by :func:`qsnmc.portable_exp`:
    NumPy's ``exp`` rounds differently on CPUs with AVX-512): unit DC gain. ``initial`` is
    ``y_{-1}``, the filter's value before the first sample (units of ``x``; a scalar or an array
    shaped like ``x[..., :1]``); None: steady state, ``y_{-1} = x_0`` (so ``y_0 = x_0``). Same units as ``x``.
    """
    if tau_s <= 0:
        raise ValueError(f"filter time constant must be positive, got {tau_s} s")
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] == 0:
        return x.copy()
    a = float(portable_exp(np.array([-dt_s / tau_s]))[0])
    start = x[..., :1] if initial is None else np.broadcast_to(np.asarray(initial, dtype=np.float64), x[..., :1].shape)
    from scipy.signal import lfilter  # here, not at the top: scipy.signal costs every `import qsnmc` ~1 s

    return lfilter([1.0 - a], [1.0, -a], x, axis=-1, zi=a * start)[0]


def lowpass_bank(x: np.ndarray, dt_s: float, taus_s: Sequence[float]) -> np.ndarray:
    """:func:`lowpass` of a 1-D signal for each time constant, shape ``(len(taus_s), n)``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"lowpass_bank takes a 1-D signal, got shape {x.shape}")
    out = np.empty((len(taus_s), x.size))
    for row, tau in enumerate(taus_s):
        out[row] = lowpass(x, dt_s, tau)
    return out
