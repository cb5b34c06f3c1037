"""Closed-form identification of the ARX voltage model by regularised least squares.

Model (one bin = one model step; ``V`` and ``I`` centred on reference values):

    V_t = sum_{i=1..na} a_i V_{t-i} + sum_{j=0..nb-1} b_j I_{t-j} + sum_{k>=1} c_k s_{t-k} + d

with ``c = basis @ w`` (see :mod:`spike_basis`). The normal equations of the largest
model are accumulated once over every repetition (:class:`GramAccumulator`, summed exactly by
:class:`qsnmc.NormalEquations`); each candidate order is a sub-block of them, solved with a ridge
penalty proportional to the diagonal (scale-free) by :func:`qsnmc.cholesky_solve`: the order search
follows these numbers, so they have the same bits on any CPU and BLAS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter, lfilter_zi

from qsnmc import NormalEquations, cholesky_solve

from qsnmc_plugins.arx.spike_basis import spike_features


@dataclass(frozen=True)
class ArxOrders:
    """One candidate structure."""

    n_voltage: int  #: autoregressive order ``na`` (lags 1..na).
    n_current: int  #: input order ``nb`` (lags 0..nb-1).
    n_spike: int  #: number of spike-history basis functions used (free lags, then raised cosines).
    ridge: float  #: ridge penalty relative to each regressor's sum of squares.


@dataclass
class ArxFilter:
    """A fitted ARX voltage model (voltage in mV, current in pA, one bin = ``step_s``)."""

    a: np.ndarray  #: autoregressive coefficients ``a_1..a_na`` (dimensionless).
    b: np.ndarray  #: current coefficients ``b_0..b_{nb-1}`` (mV/pA).
    c: np.ndarray  #: spike-history kernel ``c_1..c_K`` (mV), lag k bins after a spike onset.
    d: float  #: constant (mV), in centred coordinates.
    v_ref_mV: float  #: centring reference (mV)
    i_ref_pA: float  #: centring reference (pA)
    step_s: float  #: bin width (s).
    orders: ArxOrders  #: the structure it was fitted with.


@dataclass
class Series:
    """One repetition prepared for regression (all arrays per model bin)."""

    voltage_mV: np.ndarray  #: spike-free voltage in the window.
    current_pA: np.ndarray  #: current over the protocol, from bin 0 up to at least the window's end.
    onsets: np.ndarray  #: spike-onset bins, relative to the protocol's start.
    start_bin: int  #: protocol bin of the window's first bin.


class GramAccumulator:
    """Normal equations ``X^T X``, ``X^T y`` of the largest model, summed over series."""

    def __init__(self, max_voltage: int, max_current: int, basis: np.ndarray, v_ref_mV: float, i_ref_pA: float,
                 prefilter: np.ndarray | None = None):
        """Args:
        max_voltage, max_current: the largest orders (columns of the largest model).
        basis: spike-history basis (:func:`spike_basis.spike_basis`).
        v_ref_mV, i_ref_pA: centring references.
        prefilter: optional denominator ``A(q)``; voltage, current and spike regressors are
            then filtered by ``1 / A(q)`` first (a Steiglitz-McBride step, see :mod:`output_error`).
        """
        self.max_voltage, self.max_current, self.basis = max_voltage, max_current, basis
        self.v_ref_mV, self.i_ref_pA, self.prefilter = v_ref_mV, i_ref_pA, prefilter
        p = 1 + max_voltage + max_current + basis.shape[1]
        self.gram = np.zeros((p, p))
        self.xty = np.zeros(p)
        self.yty = 0.0
        self.n_rows = 0

    def design(self, series: Series, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """Regressor matrix and target for window bins ``rows`` (relative to the window start)."""
        v = series.voltage_mV - self.v_ref_mV
        start = max(rows.start or 0, self.max_voltage)
        stop = min(rows.stop if rows.stop is not None else v.size, v.size)
        t = np.arange(start, stop)
        k = series.start_bin + t  # protocol bins of the targets
        n_protocol = int(k[-1]) + 1 if k.size else 0
        i = series.current_pA[:n_protocol] - self.i_ref_pA
        feats = spike_features(series.onsets, n_protocol, self.basis)
        if self.prefilter is not None:
            v = lfilter([1.0], self.prefilter, v)
            i = lfilter([1.0], self.prefilter, i, zi=lfilter_zi([1.0], self.prefilter) * i[0])[0]
            feats = lfilter([1.0], self.prefilter, feats, axis=0)
        cols = [np.ones(t.size)]
        cols += [v[t - lag] for lag in range(1, self.max_voltage + 1)]
        cols += [i[np.maximum(k - lag, 0)] for lag in range(self.max_current)]
        x = np.hstack([np.column_stack(cols), feats[k]])
        return x, v[t]

    def add(self, series: Series, rows: slice) -> None:
        """Accumulate the equations of ``rows`` of one series."""
        x, y = self.design(series, rows)
        eq = NormalEquations(self.xty.size)
        eq.add(x, y)
        self.gram += eq.gram
        self.xty += eq.xty
        self.yty += eq.yty
        self.n_rows += eq.n_rows

    def columns(self, orders: ArxOrders) -> np.ndarray:
        """Indices of the columns that a candidate uses."""
        nv, nc = self.max_voltage, self.max_current
        return np.concatenate([[0], 1 + np.arange(orders.n_voltage), 1 + nv + np.arange(orders.n_current),
                               1 + nv + nc + np.arange(orders.n_spike)]).astype(int)

    def solve(self, orders: ArxOrders, step_s: float) -> ArxFilter:
        """Ridge least-squares fit of one candidate from the accumulated equations."""
        cols = self.columns(orders)
        g = self.gram[np.ix_(cols, cols)]
        penalty = orders.ridge * np.diag(g).copy()
        penalty[0] = 0.0  # the constant is not shrunk
        scale = np.sqrt(np.diag(g))  # equilibrated: the columns' units differ (mV, pA, 1)
        a = (g + np.diag(penalty)) / np.outer(scale, scale)
        theta = cholesky_solve(0.5 * (a + a.T), self.xty[cols] / scale) / scale
        na, nb = orders.n_voltage, orders.n_current
        w = theta[1 + na + nb :]
        c = self.basis[:, : orders.n_spike] @ w if orders.n_spike else np.zeros(0)
        d = float(theta[0])
        if self.prefilter is not None:  # the constant was estimated on the filtered equation
            d *= float(np.sum(self.prefilter))
        return ArxFilter(theta[1 : 1 + na], theta[1 + na : 1 + na + nb], c, d, self.v_ref_mV, self.i_ref_pA, step_s,
                         orders)

    def residual_variance(self, orders: ArxOrders, fitted: ArxFilter) -> float:
        """Mean squared one-step residual (mV^2) of a fit on the accumulated rows."""
        cols = self.columns(orders)
        # recover the basis weights from c (least squares; exact since c = basis @ w)
        w = np.linalg.lstsq(self.basis[:, : orders.n_spike], fitted.c, rcond=None)[0] if orders.n_spike else np.zeros(0)
        theta = np.concatenate([[fitted.d], fitted.a, fitted.b, w])
        g = self.gram[np.ix_(cols, cols)]
        sse = self.yty - 2 * theta @ self.xty[cols] + theta @ g @ theta
        return float(sse / max(self.n_rows, 1))
