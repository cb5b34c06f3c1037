"""The injected current through short exponential filters, for a membrane whose input is filtered.

A real cell's effective input may be the injected current low-pass filtered (electrode,
dendrite): the model's input is ``I_eff = g_0 I + sum_j g_j (k_j * I)`` with unit-area
exponential kernels ``k_j`` of fixed short time constants and gains summing to 1, fitted
with the membrane (linear in the gains).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.signal import lfilter


def filtered_currents(current_pA: np.ndarray, step_s: float, taus_s: Sequence[float]) -> np.ndarray:
    """The current through each unit-area exponential kernel (pA), ``(len(taus_s), n)``, started at steady state."""
    i = np.asarray(current_pA, dtype=np.float64)
    out = np.empty((len(taus_s), i.size))
    for row, tau in enumerate(taus_s):
        a = float(np.exp(-step_s / tau))
        out[row] = lfilter([1.0 - a], [1.0, -a], i, zi=[a * i[0]])[0]
    return out


def input_signals(current_pA: np.ndarray, step_s: float, taus_s: Sequence[float]) -> np.ndarray:
    """The raw current and its filtered versions, ``(1 + len(taus_s), n)`` (pA)."""
    return np.vstack([np.asarray(current_pA, dtype=np.float64)[None, :], filtered_currents(current_pA, step_s, taus_s)])


def effective_current(current_pA: np.ndarray, step_s: float, taus_s: Sequence[float], gains: Sequence[float]) -> np.ndarray:
    """``I_eff`` (pA): the gains (raw current first) applied to :func:`input_signals`."""
    if not taus_s:
        return np.asarray(current_pA, dtype=np.float64)
    return np.asarray(gains) @ input_signals(current_pA, step_s, taus_s)
