"""Ridge regression from normal equations accumulated in chunks, the same on any BLAS.

The design matrix (390k rows per 39 s repetition at 10 kHz times hundreds of columns)
never exists whole: :class:`NormalEquations` sums ``X^T X`` and ``X^T y`` chunk by chunk.

The map's free run amplifies a last-bit change of its weights into other spike times and
other held-out scores, so the weights must not depend on the BLAS kernel or its thread
count (which change the order and fusing of a matrix product's sums). Two rules make them
kernel-independent (issue #24; ``tests/test_plugin_ddf.py`` checks it under two kernels and
two thread counts):

- each chunk's products are exact (:func:`exact_gram`): every column is split into two parts
  of 19 significant bits on a grid of its own, so that every product and every partial sum of
  a chunk of at most :data:`MAX_EXACT_ROWS` rows is a float64 without rounding, whatever the
  order or fused multiply-adds of the BLAS; the chunks are then added in a fixed order;
- the ridge systems are solved by a Cholesky factorisation written with NumPy's elementwise
  operations and reductions (:func:`cholesky_solve`), not LAPACK.
"""
from __future__ import annotations

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
        """Add the rows ``x`` ``(n, n_features)`` with targets ``y`` ``(n,)``, n at most :data:`MAX_EXACT_ROWS`."""
        p = self.n_features
        g = exact_gram(np.column_stack([x, y]))
        self.gram += g[:p, :p]
        self.xty += g[:p, p]
        self.yty += float(g[p, p])
        self.n_rows += int(y.size)


def solve_ridge(eq: NormalEquations, penalties: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights for every relative penalty.

    ``w(lam) = argmin ||X w - y||^2 + lam * sum_k A_kk w_k^2`` with ``A = X^T X``: each
    feature is penalised relative to its own scale (the regression is solved on features
    scaled to unit mean square), so narrow RBFs and the linear terms are regularised
    alike. A penalty below ``1e-10`` is raised to it and features that never fire get a
    unit scale: a singular (collinear or empty) regression is regularised, not an error.

    Returns:
        ``(weights (n_penalties, p), training mean squared error (n_penalties,))``.
    """
    gram = 0.5 * (eq.gram + eq.gram.T)
    diag = np.diag(gram).copy()
    positive = diag > 0
    scale = np.sqrt(np.where(positive, diag, 1.0))
    if positive.any():
        scale[~positive] = np.sqrt(np.median(diag[positive]))
    g = gram / np.outer(scale, scale)
    rhs = eq.xty / scale
    lams = np.maximum(np.asarray(penalties, dtype=np.float64), 1e-10)
    eye = np.eye(g.shape[0])
    weights = np.array([cholesky_solve(g + lam * eye, rhs) for lam in lams]).reshape(lams.size, -1) / scale[None, :]
    # ||Xw - y||^2 = w^T A w - 2 w^T b + y^T y (einsum and elementwise sums: no BLAS)
    sse = np.einsum("lp,pq,lq->l", weights, gram, weights) - 2.0 * np.sum(weights * eq.xty, axis=1) + eq.yty
    mse = np.maximum(sse, 0.0) / max(eq.n_rows, 1)
    return weights, mse
