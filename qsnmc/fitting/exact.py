"""Least squares whose last bits do not depend on the CPU, the BLAS kernel or its thread count.

A fit whose discrete choices (a structure search, differential evolution) follow its numbers
turns a last-bit change into another optimum, and BLAS and LAPACK change their last bits with
the kernel the CPU selects (fused multiply-adds, SIMD width) and with the thread count. Here:

- :func:`exact_gram` and :class:`NormalEquations`: ``X^T X`` and ``X^T y`` summed without
  rounding per chunk (every column split into two parts of 19 significant bits), chunks
  added in a fixed order;
- :func:`cholesky_solve`: a Cholesky factorisation written with NumPy's elementwise
  operations and reductions, not LAPACK;
- :func:`linear_least_squares`: both together, equilibrated by the diagonal;
- :func:`bounded_levenberg_marquardt`: a few-parameter nonlinear fit whose normal equations
  are summed by ``math.fsum`` (correctly rounded), with box bounds.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: significant bits of each part of a split column: products have at most 38 bits, so sums
#: of up to 2**15 of them stay exact in float64's 53
SPLIT_BITS = 19
#: the most rows whose products :func:`exact_gram` sums without rounding
MAX_EXACT_ROWS = 2**15
#: values below 2**LOWEST_EXPONENT (about 6e-61) count as zero (their products would be subnormal)
LOWEST_EXPONENT = -200


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x ~ hi + lo``, each column on a grid of ``2**(e - 19)`` (``hi``) and ``2**(e - 38)`` (``lo``),
    where ``|x| < 2**e`` in that column: both parts have at most 19 significant bits."""
    peak = np.max(np.abs(x), axis=0) if x.shape[0] else np.zeros(x.shape[1])
    e = np.maximum(np.frexp(peak)[1], LOWEST_EXPONENT)
    hi_unit, lo_unit = np.ldexp(1.0, e - SPLIT_BITS), np.ldexp(1.0, e - 2 * SPLIT_BITS)
    hi = np.round(x / hi_unit) * hi_unit
    lo = np.round((x - hi) / lo_unit) * lo_unit
    return hi, lo


def exact_gram(x: np.ndarray) -> np.ndarray:
    """``x^T x`` of at most :data:`MAX_EXACT_ROWS` rows, the same bits on any BLAS kernel and thread count.

    ``x`` is rounded to 38 significant bits per column (relative error below 4e-12 of the
    column's largest value); the products of its parts are exact, then added in a fixed order.
    """
    if x.shape[0] > MAX_EXACT_ROWS:
        raise ValueError(f"exact_gram takes at most {MAX_EXACT_ROWS} rows, got {x.shape[0]}")
    hi, lo = _split(np.asarray(x, dtype=np.float64))
    cross = hi.T @ lo
    return hi.T @ hi + (cross + cross.T) + lo.T @ lo


def cholesky_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solution of ``a x = b`` for a symmetric positive-definite ``a``, in a fixed order of operations
    (NumPy elementwise products and sums, no BLAS or LAPACK). A pivot that rounding made
    non-positive is raised to the smallest normal float."""
    p = a.shape[0]
    low = np.zeros((p, p))
    tiny = np.finfo(np.float64).tiny
    for j in range(p):
        pivot = np.sqrt(max(a[j, j] - np.sum(low[j, :j] * low[j, :j]), tiny))
        low[j, j] = pivot
        low[j + 1 :, j] = (a[j + 1 :, j] - np.sum(low[j + 1 :, :j] * low[j, :j], axis=1)) / pivot
    y = np.zeros(p)
    for i in range(p):
        y[i] = (b[i] - np.sum(low[i, :i] * y[:i])) / low[i, i]
    x = np.zeros(p)
    for i in range(p - 1, -1, -1):
        x[i] = (y[i] - np.sum(low[i + 1 :, i] * x[i + 1 :])) / low[i, i]
    return x


class NormalEquations:
    """Running sums ``A = X^T X``, ``b = X^T y``, ``y^T y`` and the row count (see :func:`exact_gram`)."""

    def __init__(self, n_features: int) -> None:
        self.n_features = n_features
        self.gram = np.zeros((n_features, n_features))
        self.xty = np.zeros(n_features)
        self.yty = 0.0
        self.n_rows = 0

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Add the rows ``x`` ``(n, n_features)`` with targets ``y`` ``(n,)``: each chunk of
        :data:`MAX_EXACT_ROWS` rows summed exactly, the chunks added in order."""
        p = self.n_features
        for start in range(0, max(int(y.size), 1), MAX_EXACT_ROWS):
            rows = slice(start, start + MAX_EXACT_ROWS)
            g = exact_gram(np.column_stack([x[rows], y[rows]]))
            self.gram += g[:p, :p]
            self.xty += g[:p, p]
            self.yty += float(g[p, p])
        self.n_rows += int(y.size)

    def solve(self, penalty: np.ndarray | None = None) -> np.ndarray:
        """``b`` of ``(X^T X + diag(penalty)) b = X^T y`` (a ridge ``penalty`` per feature, or none),
        equilibrated by the diagonal and solved by :func:`cholesky_solve`.

        Raises:
            ValueError: a feature whose column (and penalty) is zero.
        """
        gram = 0.5 * (self.gram + self.gram.T)
        if penalty is not None:
            gram = gram + np.diag(penalty)
        scale = np.sqrt(np.diag(gram))
        if not np.all(scale > 0):
            raise ValueError("least squares: a column of the design is zero")
        return cholesky_solve(gram / np.outer(scale, scale), self.xty / scale) / scale


def linear_least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``argmin ||design b - target||^2`` (``design`` (n, p) with full column rank, ``target`` (n,)).

    The normal equations are summed exactly per chunk (columns rounded to 38 significant bits,
    relative error < 4e-12), equilibrated by their diagonal and solved by Cholesky; the
    squared condition number costs digits only where the columns are nearly collinear.
    """
    eq = NormalEquations(design.shape[1])
    eq.add(design, target)
    return eq.solve()


#: a residual function: parameters -> (weighted residuals (n,), their Jacobian (n, p))
Residuals = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _fsum_normal_equations(jac: np.ndarray, res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(J^T J, J^T r)`` with every entry a correctly rounded sum (``math.fsum``) of rounded products."""
    p = jac.shape[1]
    jtj = np.empty((p, p))
    for i in range(p):
        for j in range(i + 1):
            jtj[i, j] = jtj[j, i] = math.fsum((jac[:, i] * jac[:, j]).tolist())
    jtr = np.array([math.fsum((jac[:, i] * res).tolist()) for i in range(p)])
    return jtj, jtr


def _free_coordinates(p: np.ndarray, grad: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Coordinates free to move: those not on a bound that the descent direction ``-grad`` pushes past."""
    return ~(((p <= lower) & (grad > 0)) | ((p >= upper) & (grad < 0)))


def _damped_step(jtj: np.ndarray, jtr: np.ndarray, free: np.ndarray, lam: float) -> np.ndarray:
    """Levenberg-Marquardt step on the free coordinates (``lam`` scales Marquardt's diagonal damping)."""
    step = np.zeros(jtr.size)
    idx = np.flatnonzero(free)
    if idx.size:
        a = jtj[np.ix_(idx, idx)].copy()
        a[np.diag_indices(idx.size)] *= 1.0 + lam
        step[idx] = cholesky_solve(a, -jtr[idx])
    return step


def bounded_levenberg_marquardt(residuals: Residuals, p0: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                                max_iterations: int = 500, xtol: float = 1e-12) -> np.ndarray:
    """Minimise ``0.5 ||r(p)||^2`` over ``lower <= p <= upper`` from ``p0`` (clipped into the box).

    Each step solves the damped normal equations on the free coordinates and is clipped into
    the box; a step that lowers the cost is taken and the damping divided by 3, otherwise the
    damping is multiplied by 4. It stops when a taken step moves every coordinate by less than
    ``xtol`` relative (plus ``xtol`` absolute), or when the damping exceeds 1e16 (no descent left).

    Raises:
        ValueError: a non-finite residual at the start, or no convergence in ``max_iterations``.
    """
    p = np.clip(np.asarray(p0, dtype=np.float64), lower, upper)
    res, jac = residuals(p)
    cost = math.fsum((res * res).tolist())
    if not math.isfinite(cost):
        raise ValueError("curve fit: non-finite residuals at the starting point")
    lam = 1e-3
    for _ in range(max_iterations):
        jtj, jtr = _fsum_normal_equations(jac, res)
        trial = np.clip(p + _damped_step(jtj, jtr, _free_coordinates(p, jtr, lower, upper), lam), lower, upper)
        res_t, jac_t = residuals(trial)
        cost_t = math.fsum((res_t * res_t).tolist())
        if math.isfinite(cost_t) and cost_t < cost:
            moved = np.abs(trial - p)
            p, res, jac, cost, lam = trial, res_t, jac_t, cost_t, max(lam / 3.0, 1e-12)
            if np.all(moved <= xtol * (np.abs(p) + 1.0)):
                return p
        else:
            lam *= 4.0
            if lam > 1e16:
                return p
    raise ValueError(f"curve fit: no convergence in {max_iterations} iterations")
