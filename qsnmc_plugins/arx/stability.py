"""Stability of the fitted autoregressive part, and its repair.

The ARX recursion ``V_t = sum_i a_i V_{t-i} + ...`` is stable when every root of
``z^n - a_1 z^(n-1) - ... - a_n`` lies strictly inside the unit circle. A fitted
filter with a root on or outside it would make the free-running voltage diverge;
:func:`stabilise` reflects such roots inside (``p -> 1/conj(p)``, which keeps the
magnitude response's shape) and shrinks them to at most ``max_radius``.
"""
from __future__ import annotations

import numpy as np


def ar_polynomial(a: np.ndarray) -> np.ndarray:
    """Denominator ``[1, -a_1, ..., -a_n]`` of the recursion, as scipy.signal.lfilter takes it."""
    return np.concatenate([[1.0], -np.asarray(a, dtype=np.float64)])


def pole_radius(a: np.ndarray) -> float:
    """Largest pole magnitude of the recursion with coefficients ``a`` (0 for no AR term)."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(np.roots(ar_polynomial(a)))))


def is_stable(a: np.ndarray, max_radius: float) -> bool:
    """True when every pole lies within ``max_radius`` of the origin."""
    return pole_radius(a) <= max_radius


def stabilise(a: np.ndarray, max_radius: float) -> tuple[np.ndarray, str]:
    """Move every pole of the recursion inside ``max_radius``.

    Returns:
        ``(a_new, message)``: the repaired coefficients and a message saying what was
        done (empty if ``a`` was already stable).
    """
    a = np.asarray(a, dtype=np.float64)
    radius = pole_radius(a)
    if radius <= max_radius:
        return a.copy(), ""
    poles = np.roots(ar_polynomial(a))
    mag = np.abs(poles)
    outside = mag > 1.0
    poles[outside] = 1.0 / np.conj(poles[outside])
    mag = np.abs(poles)
    poles = np.where(mag > max_radius, poles * (max_radius / np.maximum(mag, 1e-300)), poles)
    a_new = -np.real(np.poly(poles))[1:]
    return a_new, (
        f"unstable ARX filter: largest pole radius {radius:.4f} >= {max_radius}; "
        f"poles reflected/shrunk inside, new radius {pole_radius(a_new):.4f}"
    )
