"""Time-delay embedding of a scalar series and the classical ways to choose it.

- Average mutual information (Fraser & Swinney 1986): the delay tau is the first local
  minimum of the mutual information between x(n) and x(n + tau).
- False nearest neighbours (Kennel, Brown & Abarbanel 1992): the dimension D is the
  first one at which (almost) no nearest neighbour in D dimensions is torn apart by
  adding the (D+1)-th delay coordinate.

Delays and dimensions are in samples; the series are unitless (any consistent unit).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def delay_embed(x: np.ndarray, dimension: int, tau: int) -> np.ndarray:
    """Rows ``[x(n), x(n - tau), ..., x(n - (D-1) tau)]`` (D = ``dimension``, ``tau`` in samples) for every n
    with a full history: shape ``(n_samples - (D-1) tau, D)``, row r is time ``n = r + (D-1) tau``."""
    x = np.asarray(x, dtype=np.float64)
    span = (dimension - 1) * tau
    n = x.size - span
    if n <= 0:
        raise ValueError(f"series of {x.size} samples too short for D={dimension}, tau={tau}")
    return np.stack([x[span - j * tau : span - j * tau + n] for j in range(dimension)], axis=1)


def average_mutual_information(x: np.ndarray, max_lag: int, n_bins: int = 32) -> np.ndarray:
    """Mutual information (nats) between ``x(n)`` and ``x(n + lag)`` for lag = 0..max_lag.

    Estimated from a 2-D histogram over equal-population bins (quantiles of x).
    """
    x = np.asarray(x, dtype=np.float64)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    codes = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    k = edges.size - 1
    ami = np.empty(max_lag + 1)
    for lag in range(max_lag + 1):
        a = codes[: codes.size - lag]
        b = codes[lag:]
        joint = np.bincount(a * k + b, minlength=k * k).reshape(k, k).astype(np.float64)
        joint /= joint.sum()
        pa = joint.sum(1, keepdims=True)
        pb = joint.sum(0, keepdims=True)
        nz = joint > 0
        ami[lag] = float(np.sum(joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])))
    return ami


def false_nearest_neighbours(x: np.ndarray, tau: int, max_dimension: int = 8, r_tol: float = 15.0, a_tol: float = 2.0,
                             max_points: int = 20_000, seed: int = 0) -> np.ndarray:
    """Fraction of false nearest neighbours for D = 1..max_dimension (Kennel et al. 1992).

    A neighbour pair in D dimensions is false when adding coordinate D+1 stretches it by
    more than ``r_tol`` times its distance, or by more than ``a_tol`` standard
    deviations of x. At most ``max_points`` query points (chosen at random) are used.

    Returns:
        Array of length ``max_dimension``; entry ``D - 1`` is the fraction for dimension D.
    """
    x = np.asarray(x, dtype=np.float64)
    sd = float(np.std(x)) or 1.0
    rng = np.random.default_rng(seed)
    out = np.empty(max_dimension)
    for dim in range(1, max_dimension + 1):
        emb = delay_embed(x, dim + 1, tau)  # column 0 is the future coordinate x(n), 1.. the D-dim point
        future = emb[:, 0]
        points = emb[:, 1:]
        tree = cKDTree(points)
        q = rng.choice(points.shape[0], size=min(max_points, points.shape[0]), replace=False)
        dist, nb = tree.query(points[q], k=2)
        d, j = dist[:, 1], nb[:, 1]
        ok = d > 0
        stretch = np.abs(future[q] - future[j])
        false = (stretch[ok] > r_tol * d[ok]) | (np.sqrt(d[ok] ** 2 + stretch[ok] ** 2) > a_tol * sd)
        out[dim - 1] = float(np.mean(false)) if false.size else 0.0
    return out


def suggest_embedding(x: np.ndarray, max_lag: int = 200, max_dimension: int = 8, fnn_threshold: float = 0.01) -> dict:
    """Delay (AMI first minimum) and dimension (first D with FNN fraction < threshold).

    Returns:
        ``{"tau": int, "dimension": int, "ami": list, "fnn": list}`` (delays in samples).
    """
    ami = average_mutual_information(x, max_lag)
    minima = [lag for lag in range(1, ami.size - 1) if ami[lag] <= ami[lag - 1] and ami[lag] < ami[lag + 1]]
    tau = minima[0] if minima else int(np.argmin(ami[1:]) + 1)  # the first local minimum, else the global one
    fnn = false_nearest_neighbours(x, tau, max_dimension)
    below = np.flatnonzero(fnn < fnn_threshold)
    dim = int(below[0] + 1) if below.size else int(np.argmin(fnn) + 1)
    return {"tau": int(tau), "dimension": dim, "ami": ami.tolist(), "fnn": fnn.tolist()}
