"""Placing the RBF centres and choosing their widths.

k-means (SciPy's ``kmeans2`` with k-means++ seeding) on the training embeddings
under-covers the rare spike states, so a share of the centres is clustered from the
points near spikes only.
"""
from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.spatial import cKDTree


def kmeans_centres(points: np.ndarray, n_centres: int, seed: int, max_points: int, iterations: int) -> np.ndarray:
    """k-means centres of (at most ``max_points`` randomly chosen) points."""
    rng = np.random.default_rng(seed)
    if points.shape[0] > max_points:
        points = points[rng.choice(points.shape[0], max_points, replace=False)]
    n_centres = max(1, min(n_centres, points.shape[0]))
    centres, _ = kmeans2(points, n_centres, iter=iterations, minit="++", seed=rng)
    return centres


def place_centres(points: np.ndarray, spike_mask: np.ndarray, n_centres: int, spike_share: float, seed: int,
                  max_points: int, iterations: int) -> np.ndarray:
    """``n_centres`` centres of the RBF inputs ``points`` ``(n_points, n_inputs)``: ``spike_share`` of them
    clustered from the spike-state points (``spike_mask``: near a recorded spike), the rest from all;
    ``max_points``, ``iterations``: points one clustering sees at most, and its iterations."""
    n_spike = int(round(spike_share * n_centres)) if spike_mask.any() else 0
    n_spike = min(n_spike, int(spike_mask.sum()))
    parts = [kmeans_centres(points, n_centres - n_spike, seed, max_points, iterations)]
    if n_spike:
        parts.append(kmeans_centres(points[spike_mask], n_spike, seed + 1, max_points, iterations))
    centres = np.concatenate(parts)
    # drop duplicated centres (empty clusters of k-means can coincide)
    return np.unique(np.round(centres, 9), axis=0)


def nearest_centre_widths(centres: np.ndarray, width_factor: float) -> np.ndarray:
    """``sigma_q = width_factor * (mean distance from c_q to its 2 nearest other centres)``.

    Centres far apart (the sparse spike region) get wide functions, dense ones narrow.
    """
    if centres.shape[0] < 2:
        return np.full(centres.shape[0], width_factor)
    k = min(3, centres.shape[0])
    dist, _ = cKDTree(centres).query(centres, k=k)
    d = dist[:, 1:].mean(axis=1)
    d[d <= 0] = np.median(d[d > 0]) if np.any(d > 0) else 1.0
    return width_factor * d
