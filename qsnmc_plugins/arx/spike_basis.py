"""Basis of the spike-history kernel ``c_k`` (k = 1, 2, ... bins after a spike onset).

The first ``fine_s`` are free lags (one coefficient per bin: the reset along the
cut-out spike and the fast after-hyperpolarisation); later lags are spanned by
raised cosines on a logarithmic time axis (Pillow et al. 2008, Nature 454:995),
peaks from just after the free lags up to ``last_peak_s``, so that a few
coefficients describe slow adaptation. The bumps are nested: using the first ``m``
of them lengthens the kernel, which lets the order search choose its span.
"""
from __future__ import annotations

import numpy as np

from qsnmc_plugins.arx.settings import ArxSettings


def n_fine_lags(step_s: float, fine_s: float) -> int:
    """Number of free lags of ``fine_s`` (s) at this bin width (s)."""
    return max(1, int(round(fine_s / step_s)))


def spike_basis(step_s: float, settings: ArxSettings) -> np.ndarray:
    """Basis matrix, shape ``(n_lags, n_fine + n_cosines)``; row ``k-1`` is lag ``k`` bins.

    Columns: the free lags (unit vectors), then the raised cosines in order of their peaks
    (``settings``: ``fine_s``, ``last_peak_s``, ``n_cosines``, ``log_offset_s``).
    """
    n_fine = n_fine_lags(step_s, settings.fine_s)
    n_cosines, offset = settings.n_cosines, settings.log_offset_s
    t_first = (n_fine + 1) * step_s
    lo, hi = np.log(t_first + offset), np.log(settings.last_peak_s + offset)
    spacing = (hi - lo) / max(1, n_cosines - 1)
    peaks = lo + spacing * np.arange(n_cosines)
    t_max = np.exp(hi + 2 * spacing) - offset
    n_lags = int(np.ceil(t_max / step_s))
    t = np.arange(1, n_lags + 1) * step_s
    x = (np.log(t + offset)[:, None] - peaks[None, :]) * np.pi / (2 * spacing)
    cos = 0.5 * (1 + np.cos(np.clip(x, -np.pi, np.pi)))
    cos[: n_fine, :] = 0.0  # the free lags own the first bins
    fine = np.zeros((n_lags, n_fine))
    fine[np.arange(n_fine), np.arange(n_fine)] = 1.0
    return np.hstack([fine, cos])


def spike_features(onsets: np.ndarray, n_bins: int, basis: np.ndarray) -> np.ndarray:
    """Spike-history regressors of a series of ``n_bins`` bins with spike ``onsets`` (bins), shape
    ``(n_bins, n_basis)``: row ``t`` is ``sum_k basis[k-1] s_{t-k}`` (``basis``: :func:`spike_basis`)."""
    out = np.zeros((n_bins, basis.shape[1]))
    n_lags = basis.shape[0]
    for k in np.asarray(onsets, dtype=int):
        lo, hi = k + 1, min(n_bins, k + 1 + n_lags)
        if lo < hi:
            out[lo:hi] += basis[: hi - lo]
    return out
