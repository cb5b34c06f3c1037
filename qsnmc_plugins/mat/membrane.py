"""The MAT model's membrane: a linear, non-resetting filter of the injected current.

``V(t) = E + sum_m w_m (k_m * I)(t)`` where each ``k_m`` is a unit-area exponential
kernel of time constant ``tau_m`` (a basis, fixed in advance) and the weights
``w_m`` (mV/pA, i.e. GOhm) and the offset ``E`` (mV) are fitted by linear least
squares on the subthreshold recorded voltage: samples from shortly before each
recorded spike to some time after it are left out, since the MAT model moves spike
after-effects into its threshold. One basis time constant gives the published
leaky integrator ``tau dV/dt = -(V - E) + R I`` (R = w).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qsnmc import TrainingStimulus

#: default basis time constants of the membrane filter (s)
DEFAULT_BASIS_TAUS_S = (0.001, 0.003, 0.010, 0.030, 0.100)
#: default part of the voltage left out around each recorded spike (s before, s after)
DEFAULT_CUT_S = (0.002, 0.020)


def filtered_current(current_pA: np.ndarray, dt_s: float, taus_s: Sequence[float]) -> np.ndarray:
    """The current through each unit-gain exponential kernel (pA), shape ``(n_taus, n_samples)``.

    ``x[k] = a x[k-1] + (1 - a) I[k]`` with ``a = exp(-dt / tau)``, started in the
    steady state of the first sample (the cell held at ``I[0]`` before the protocol).
    """
    from scipy.signal import lfilter

    i = np.asarray(current_pA, dtype=np.float64)
    out = np.empty((len(taus_s), i.size))
    for row, tau in enumerate(taus_s):
        a = float(np.exp(-dt_s / tau))
        out[row] = lfilter([1.0 - a], [1.0, -a], i, zi=[a * i[0]])[0]
    return out


@dataclass(frozen=True)
class MembraneFilter:
    """A fitted membrane filter.

    Attributes:
        taus_s: basis time constants (s).
        weights_GOhm: weight of each basis kernel (mV/pA = GOhm).
        offset_mV: potential at zero current (mV).
        rmse_mV: root-mean-square error on the subthreshold samples it was fitted on (mV).
    """

    taus_s: tuple[float, ...]
    weights_GOhm: tuple[float, ...]
    offset_mV: float
    rmse_mV: float = float("nan")

    def potential(self, current_pA: np.ndarray, dt_s: float) -> np.ndarray:
        """The non-resetting potential ``V`` (mV) for a whole current protocol (pA)."""
        x = filtered_current(current_pA, dt_s, self.taus_s)
        return self.offset_mV + np.asarray(self.weights_GOhm) @ x

    @property
    def input_resistance_MOhm(self) -> float:
        """Steady-state gain (MOhm): the sum of the weights."""
        return 1e3 * float(np.sum(self.weights_GOhm))

    def to_record(self) -> dict:
        return {
            "basis_taus_ms": [1e3 * t for t in self.taus_s],
            "weights_GOhm": list(map(float, self.weights_GOhm)),
            "offset_mV": float(self.offset_mV),
            "input_resistance_MOhm": self.input_resistance_MOhm,
            "subthreshold_rmse_mV": float(self.rmse_mV),
        }


def subthreshold_mask(stim: TrainingStimulus, cut_s: tuple[float, float], stop_s: float | None = None) -> np.ndarray:
    """Boolean ``(n_repetitions, n_window_samples)``: True where a sample is kept for the fit.

    Left out: from ``cut_s[0]`` before to ``cut_s[1]`` after each recorded spike, and
    everything at or after ``stop_s`` (absolute time, s) when given.
    """
    n_rep, n = stim.voltage_mV.shape
    keep = np.ones((n_rep, n), dtype=bool)
    before = int(round(cut_s[0] / stim.dt_s))
    after = int(round(cut_s[1] / stim.dt_s))
    for r, spikes in enumerate(stim.spike_times_s):
        k = np.round((np.asarray(spikes) - stim.window_s[0]) / stim.dt_s).astype(np.int64)
        # mark interval starts/ends and integrate: O(n) whatever the cut length
        edges = np.zeros(n + 1, dtype=np.int64)
        np.add.at(edges, np.clip(k - before, 0, n), 1)
        np.add.at(edges, np.clip(k + after + 1, 0, n), -1)
        keep[r] = np.cumsum(edges[:n]) == 0
    if stop_s is not None:
        stop = int(round((stop_s - stim.window_s[0]) / stim.dt_s))
        keep[:, max(stop, 0):] = False
    return keep


def fit_membrane(
    stimuli: Sequence[TrainingStimulus],
    taus_s: Sequence[float] = DEFAULT_BASIS_TAUS_S,
    cut_s: tuple[float, float] = DEFAULT_CUT_S,
    stops_s: Sequence[float | None] | None = None,
) -> MembraneFilter:
    """Fit the filter weights and offset by least squares on the subthreshold voltage.

    Every repetition counts: a sample enters with weight ``n_r`` (the number of
    repetitions in which it is subthreshold) and target the mean voltage over those
    repetitions, which gives exactly the least-squares solution over all repetitions.

    Args:
        stimuli: training stimuli (voltage in mV, current in pA).
        taus_s: basis time constants (s).
        cut_s: voltage left out before / after each recorded spike (s).
        stops_s: per stimulus, fit only on samples before this absolute time (s); None: whole window.
    """
    taus = tuple(float(t) for t in taus_s)
    stops = list(stops_s) if stops_s is not None else [None] * len(stimuli)
    gram = np.zeros((len(taus) + 1, len(taus) + 1))
    rhs = np.zeros(len(taus) + 1)
    sq, count = 0.0, 0.0
    for stim, stop in zip(stimuli, stops):
        keep = subthreshold_mask(stim, cut_s, stop)
        n_kept = keep.sum(axis=0).astype(np.float64)
        v_sum = np.where(keep, stim.voltage_mV, 0.0).sum(axis=0)
        x = filtered_current(stim.current_pA, stim.dt_s, taus)[:, stim.window_slice]
        design = np.vstack([x, np.ones(x.shape[1])])  # (n_features, n_samples)
        gram += (design * n_kept) @ design.T
        rhs += design @ v_sum
        sq += float(np.sum(np.where(keep, stim.voltage_mV, 0.0) ** 2))
        count += float(n_kept.sum())
    if count < 10 * gram.shape[0]:
        raise RuntimeError(f"only {int(count)} subthreshold samples to fit the membrane filter")
    coef = np.linalg.solve(gram, rhs)
    # residual sum of squares from the normal equations: |v|^2 - 2 c.b + c.G.c
    rss = max(sq - 2.0 * coef @ rhs + coef @ gram @ coef, 0.0)
    return MembraneFilter(taus, tuple(float(w) for w in coef[:-1]), float(coef[-1]), float(np.sqrt(rss / count)))
