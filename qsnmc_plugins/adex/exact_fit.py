"""Stage 1's least squares in a fixed order of operations: the same bits on any BLAS kernel and thread count.

LAPACK's least squares (``np.linalg.lstsq``, the SVDs inside ``scipy.optimize.curve_fit``) and
BLAS products (``X @ b``) change their last bits with the OpenBLAS kernel the CPU selects
(fused multiply-adds, SIMD width) and with the thread count; stage 2's differential evolution
turns a last-bit change of the stage-1 membrane into another optimum (issue #24). Here:

- the linear regression is solved from exactly summed normal equations
  (:func:`qsnmc_plugins.ddf.ridge.exact_gram`, chunks added in a fixed order) by a Cholesky
  factorisation written with NumPy's elementwise operations (:func:`qsnmc_plugins.ddf.ridge.cholesky_solve`);
- the nonlinear curve fit is a Levenberg-Marquardt iteration on a few parameters whose normal
  equations are summed by ``math.fsum`` (correctly rounded, order-free), with box bounds
  handled by freezing the coordinates that sit on a bound and are pushed outward.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from qsnmc_plugins.ddf.ridge import MAX_EXACT_ROWS, NormalEquations, cholesky_solve

#: a residual function: parameters -> (weighted residuals (n,), their Jacobian (n, p))
Residuals = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def linear_least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``argmin ||design b - target||^2`` (``design`` (n, p) with full column rank, ``target`` (n,)).

    The normal equations are summed exactly per chunk (columns rounded to 38 significant bits,
    relative error < 4e-12), equilibrated by their diagonal and solved by Cholesky; the
    squared condition number costs digits only where the columns are nearly collinear.
    """
    eq = NormalEquations(design.shape[1])
    for start in range(0, design.shape[0], MAX_EXACT_ROWS):
        eq.add(design[start : start + MAX_EXACT_ROWS], target[start : start + MAX_EXACT_ROWS])
    gram = 0.5 * (eq.gram + eq.gram.T)
    scale = np.sqrt(np.diag(gram))
    if not np.all(scale > 0):
        raise ValueError("least squares: a column of the design is zero")
    return cholesky_solve(gram / np.outer(scale, scale), eq.xty / scale) / scale


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
