"""Ridge regression in closed form from normal equations accumulated in chunks.

The design matrix (390k rows per 39 s repetition at 10 kHz times hundreds of columns)
never exists whole: :class:`NormalEquations` sums ``X^T X`` and ``X^T y`` chunk by chunk.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class NormalEquations:
    """Running sums ``A = X^T X``, ``b = X^T y``, ``y^T y`` and the row count."""

    n_features: int
    gram: np.ndarray = field(init=False)
    xty: np.ndarray = field(init=False)
    yty: float = 0.0
    n_rows: int = 0

    def __post_init__(self) -> None:
        self.gram = np.zeros((self.n_features, self.n_features))
        self.xty = np.zeros(self.n_features)

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Add the rows ``x`` ``(n, n_features)`` with targets ``y`` ``(n,)``."""
        self.gram += x.T @ x
        self.xty += x.T @ y
        self.yty += float(y @ y)
        self.n_rows += int(y.size)


def solve_ridge(eq: NormalEquations, penalties: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights for every relative penalty in one eigendecomposition.

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
    evals, evecs = np.linalg.eigh(g)
    evals = np.maximum(evals, 0.0)
    proj = evecs.T @ (eq.xty / scale)
    lams = np.maximum(np.asarray(penalties, dtype=np.float64), 1e-10)
    coef = proj[None, :] / (evals[None, :] + lams[:, None])
    weights = (coef @ evecs.T) / scale[None, :]
    # ||Xw - y||^2 = w^T A w - 2 w^T b + y^T y
    sse = np.einsum("lp,pq,lq->l", weights, gram, weights) - 2.0 * weights @ eq.xty + eq.yty
    mse = np.maximum(sse, 0.0) / max(eq.n_rows, 1)
    return weights, mse
