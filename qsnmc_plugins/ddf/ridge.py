"""Ridge regression from normal equations accumulated in chunks, the same on any BLAS.

The design matrix (390k rows per 39 s repetition at 10 kHz times hundreds of columns) never
exists whole: :class:`qsnmc.NormalEquations` sums ``X^T X`` and ``X^T y`` chunk by chunk, each
chunk exactly, and the ridge systems are solved by :func:`qsnmc.cholesky_solve`, not LAPACK: the
map's free run amplifies a last-bit change of its weights into other spike times, so the weights
must not depend on the BLAS kernel or its thread count (``tests/test_plugin_ddf.py`` checks it
under two kernels and two thread counts).
"""
from __future__ import annotations

import numpy as np

from qsnmc import NormalEquations, cholesky_solve


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
