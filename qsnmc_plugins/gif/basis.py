"""Exponential basis functions for the spike-triggered kernels eta (current) and gamma (threshold).

A kernel is ``k(s) = sum_k w_k exp(-s / tau_k)`` for a lag ``s >= 0`` after a spike, with
log-spaced time constants ``tau_k`` fixed in advance, so that a kernel summed over every past
spike is a handful of exponentially decaying states (cheap to simulate, event by event) and
the weights ``w_k`` enter every fit linearly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class ExponentialBasis:
    """Log-spaced exponentials.

    Attributes:
        taus_s: time constants (s).
    """

    taus_s: tuple[float, ...]

    @classmethod
    def log_spaced(cls, first_s: float, last_s: float, n: int) -> "ExponentialBasis":
        """``n`` time constants from ``first_s`` to ``last_s`` (s), log-spaced."""
        return cls(tuple(float(t) for t in np.geomspace(first_s, last_s, n)))

    @property
    def size(self) -> int:
        return len(self.taus_s)

    def decay(self, step_s: float) -> np.ndarray:
        """Per-step decay factor of each exponential, ``exp(-step / tau)``."""
        return np.exp(-step_s / np.asarray(self.taus_s))

    def spike_features(self, spike_bins: np.ndarray, n_bins: int, step_s: float) -> np.ndarray:
        """``X[k, n] = sum over spikes m <= n of exp(-(n - m) step / tau_k)``, shape ``(K, n_bins)``.

        A spike counts from its own bin on (lag 0 has value 1): the kernel with weights ``w``
        summed over the spikes is ``w @ X``.
        """
        from scipy.signal import lfilter

        impulses = np.zeros(n_bins)
        np.add.at(impulses, spike_bins[(spike_bins >= 0) & (spike_bins < n_bins)], 1.0)
        out = np.empty((self.size, n_bins))
        for row, a in enumerate(self.decay(step_s)):
            out[row] = lfilter([1.0], [1.0, -a], impulses)
        return out

    def kernel(self, weights: Sequence[float], lags_s: np.ndarray) -> np.ndarray:
        """The kernel ``sum_k w_k exp(-lag / tau_k)`` at lags (s)."""
        lags = np.asarray(lags_s, dtype=np.float64)
        return np.asarray(weights) @ np.exp(-np.outer(1.0 / np.asarray(self.taus_s), lags))

    def to_record(self, weights: Sequence[float], unit: str) -> dict:
        return {"basis": "exponential", "taus_ms": [1e3 * t for t in self.taus_s],
                f"weights_{unit}": [float(w) for w in weights]}
