"""The MAT model's membrane: a linear, non-resetting filter of the injected current.

``V(t) = E + sum_m w_m (k_m * I)(t)`` where each ``k_m`` is a unit-area exponential
kernel of time constant ``tau_m`` (:func:`qsnmc.lowpass`) and the weights ``w_m``
(mV/pA, i.e. GOhm) and the offset ``E`` (mV) are fitted by linear least squares on the
subthreshold recorded voltage: samples from shortly before each recorded spike to some
time after it are left out, since the MAT model moves spike after-effects into its
threshold. One time constant gives the published leaky integrator
``tau dV/dt = -(V - E) + R I`` (R = w).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qsnmc import NormalEquations, TrainingStimulus, lowpass_bank, spike_window_mask


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
        return self.offset_mV + np.asarray(self.weights_GOhm) @ lowpass_bank(current_pA, dt_s, self.taus_s)

    @property
    def input_resistance_MOhm(self) -> float:
        """Steady-state gain (MOhm): the sum of the weights."""
        return 1e3 * float(np.sum(self.weights_GOhm))


def fit_membrane(stimuli: Sequence[TrainingStimulus], taus_s: Sequence[float],
                 cut_s: tuple[float, float]) -> MembraneFilter:
    """Fit the filter weights and offset by least squares on the subthreshold voltage.

    Every repetition counts: a sample enters with weight ``n_r`` (the number of repetitions in
    which it is subthreshold) and the sum of the voltage over those repetitions, which gives
    exactly the least-squares solution over all repetitions. The normal equations are summed
    exactly (:class:`qsnmc.NormalEquations`, per weight) and solved by Cholesky: the tau_m
    chosen on these fits has the same bits on any CPU and BLAS.

    Args:
        stimuli: training stimuli (voltage in mV, current in pA).
        taus_s: basis time constants (s).
        cut_s: voltage left out before / after each recorded spike (s).
    """
    taus = tuple(float(t) for t in taus_s)
    n_features = len(taus) + 1
    gram, rhs, sq, count = np.zeros((n_features, n_features)), np.zeros(n_features), 0.0, 0
    for stim in stimuli:
        before, after = (int(round(c / stim.dt_s)) for c in cut_s)
        spikes = [np.round((np.asarray(t) - stim.window_s[0]) / stim.dt_s) for t in stim.spike_times_s]
        keep = ~np.array([spike_window_mask(k, stim.voltage_mV.shape[1], before, after) for k in spikes])
        n_kept = keep.sum(axis=0)
        v_kept = np.where(keep, stim.voltage_mV, 0.0)
        x = lowpass_bank(stim.current_pA, stim.dt_s, taus)[:, stim.window_slice]
        design = np.vstack([x, np.ones(x.shape[1])]).T  # (n_samples, n_features)
        for weight in range(1, keep.shape[0] + 1):  # samples subthreshold in `weight` repetitions
            rows = n_kept == weight
            eq = NormalEquations(n_features)
            eq.add(design[rows], v_kept[:, rows].sum(axis=0))
            gram += weight * eq.gram
            rhs += eq.xty
        sq += float(np.sum(v_kept**2))
        count += int(n_kept.sum())
    if count < 10 * n_features:
        raise RuntimeError(f"only {count} subthreshold samples to fit the membrane filter")
    equations = NormalEquations(n_features)
    equations.gram, equations.xty = gram, rhs
    coef = equations.solve()
    # residual sum of squares from the normal equations: |v|^2 - 2 c.b + c.G.c
    rss = max(sq - 2.0 * coef @ rhs + coef @ gram @ coef, 0.0)
    return MembraneFilter(taus, tuple(float(w) for w in coef[:-1]), float(coef[-1]), float(np.sqrt(rss / count)))
