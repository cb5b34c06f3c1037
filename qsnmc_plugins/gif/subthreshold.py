"""The GIF membrane and spike-triggered current, by linear regression of dV/dt (Mensi et al. 2012).

Outside spike windows the GIF voltage obeys

    C dV/dt = -g_L (V - E_L) + I(t) - sum_spikes eta(t - t_j),   eta(s) = sum_k w_k exp(-s / tau_k),

which is linear in ``(1/C, g_L/C, g_L E_L/C, w_k/C)``: one least-squares problem over every
repetition of every stimulus, on the model grid. dV/dt is the central difference
``(V[n+1] - V[n-1]) / 2h``, so white recording noise on ``V[n]`` does not correlate with it
(a forward difference would bias ``g_L/C`` upwards). Samples from ``cut_before_s`` before each
recorded spike to the end of the refractory period after it are left out. The reset ``V_r``
is the mean recorded voltage at the end of the refractory period. The normal equations are
summed exactly (:class:`qsnmc.NormalEquations`) and solved by Cholesky, so the structure and
latency the search chooses on these fits do not depend on the CPU or BLAS.

The membrane's input may be the injected current low-pass filtered (electrode, dendrite):
``I_eff = g_0 I + sum_j g_j (k_j * I)`` with unit-area exponential kernels ``k_j`` of fixed
short time constants (:func:`qsnmc.lowpass_bank`) and gains summing to 1, fitted with the
membrane (linear in the gains).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qsnmc import NormalEquations, lowpass_bank, spike_window_mask

from qsnmc_plugins.gif.basis import ExponentialBasis
from qsnmc_plugins.gif.binning import BinnedStimulus

#: pA / pF = V/s: the factor to mV/s
MV_PER_S = 1e3


def input_signals(current_pA: np.ndarray, step_s: float, taus_s: Sequence[float]) -> np.ndarray:
    """The raw current and its low-pass filtered versions, ``(1 + len(taus_s), n)`` (pA)."""
    current = np.asarray(current_pA, dtype=np.float64)
    return np.vstack([current[None, :], lowpass_bank(current, step_s, taus_s)])


@dataclass(frozen=True)
class Membrane:
    """Fitted subthreshold parameters of a GIF neuron.

    Attributes:
        C_pF: membrane capacitance (pF).
        gL_nS: leak conductance (nS).
        EL_mV: leak reversal (mV).
        eta_basis: basis of the spike-triggered current.
        eta_pA: weight of each basis exponential (pA; positive = hyperpolarising).
        Vr_mV: voltage after the refractory period (mV).
        t_ref_s: absolute refractory period (s).
        dvdt_rmse: RMS residual of dV/dt on the fitted samples (mV/s).
        variance_explained: fraction of dV/dt variance explained on the fitted samples.
        input_taus_s: time constants of the input filters (s; empty: the raw current drives the membrane).
        input_gains: gain of the raw current, then of each filtered one (sum 1).
    """

    C_pF: float
    gL_nS: float
    EL_mV: float
    eta_basis: ExponentialBasis
    eta_pA: tuple[float, ...]
    Vr_mV: float
    t_ref_s: float
    dvdt_rmse: float = float("nan")
    variance_explained: float = float("nan")
    input_taus_s: tuple[float, ...] = ()
    input_gains: tuple[float, ...] = (1.0,)

    def effective_current(self, current_pA: np.ndarray, step_s: float) -> np.ndarray:
        """The current that drives the membrane (pA), from the injected one (pA) on the model grid:
        the gains (raw current first) applied to :func:`input_signals`."""
        if not self.input_taus_s:
            return np.asarray(current_pA, dtype=np.float64)
        return np.asarray(self.input_gains) @ input_signals(current_pA, step_s, self.input_taus_s)

    @property
    def tau_m_s(self) -> float:
        return 1e-3 * self.C_pF / self.gL_nS

    def to_record(self) -> dict:
        return {
            "C_pF": self.C_pF, "gL_nS": self.gL_nS, "EL_mV": self.EL_mV, "tau_m_ms": 1e3 * self.tau_m_s,
            "Vr_mV": self.Vr_mV, "t_ref_ms": 1e3 * self.t_ref_s,
            "eta": self.eta_basis.to_record(self.eta_pA, "pA"),
            "dvdt_rmse_mV_per_s": self.dvdt_rmse, "dvdt_variance_explained": self.variance_explained,
            "input_filter": {"taus_ms": [1e3 * t for t in self.input_taus_s], "gains": list(self.input_gains),
                             "note": "gain of the raw current first, then of each filtered current"},
        }


def fit_membrane(stimuli: Sequence[BinnedStimulus], eta_basis: ExponentialBasis, t_ref_s: float, cut_before_s: float,
                 ridge: float, input_taus_s: Sequence[float]) -> Membrane:
    """Least-squares fit of C, g_L, E_L and the eta weights on every repetition of every stimulus.

    Args:
        stimuli: binned training stimuli (voltage mV, current pA).
        eta_basis: basis of the spike-triggered current.
        t_ref_s: refractory period (s): left out after each spike, and where ``V_r`` is read.
        cut_before_s: left out before each recorded spike (s): the spike's upstroke.
        ridge: relative ridge on the eta weights (a fraction of their Gram diagonal).
        input_taus_s: time constants of the input filters (s), each with its own fitted gain.
    """
    n_in = 1 + len(input_taus_s)
    p = 2 + n_in + eta_basis.size
    eq = NormalEquations(p)
    ysum = 0.0
    resets = []
    for stim in stimuli:
        h = stim.step_s
        n = stim.n_bins
        n_ref = max(1, int(round(t_ref_s / h)))
        before = int(round(cut_before_s / h))
        window = slice(stim.first_bin, stim.first_bin + n)
        inputs = input_signals(stim.current_pA, h, tuple(input_taus_s))[:, window]
        for v, spikes in zip(stim.voltage_mV, stim.spike_bins):
            dvdt = np.full(n, np.nan)
            dvdt[1:-1] = (v[2:] - v[:-2]) / (2.0 * h)
            keep = ~spike_window_mask(spikes, n, before, n_ref)
            keep[[0, -1]] = False
            x = eta_basis.spike_features(spikes, n, h)
            y = dvdt[keep]
            eq.add(np.vstack([v, np.ones(n), inputs, -x])[:, keep].T, y)
            ysum += float(y.sum())
            after = spikes + n_ref
            resets.append(v[after[after < n]])
    count = eq.n_rows
    if count < 10 * p:
        raise RuntimeError(f"gif: only {count} subthreshold samples to fit the membrane")
    reg = np.zeros(p)
    reg[2 + n_in:] = ridge * np.diag(eq.gram)[2 + n_in:]
    coef = eq.solve(reg)
    rss = max(eq.yty - 2.0 * coef @ eq.xty + coef @ eq.gram @ coef, 0.0)
    var = eq.yty / count - (ysum / count) ** 2
    a_v, a_0 = coef[:2]
    a_i = float(np.sum(coef[2 : 2 + n_in]))  # the input filter's gains sum to 1
    if a_i <= 0 or a_v >= 0:
        raise RuntimeError(f"gif: membrane regression gave a non-physical fit (dV/dt ~ {a_v:.3g} V + {a_i:.3g} I)")
    c = MV_PER_S / a_i
    gl = -a_v * c / MV_PER_S
    el = -a_0 / a_v
    eta = tuple(float(-b * c / MV_PER_S) for b in coef[2 + n_in:])
    gains = tuple(float(g / a_i) for g in coef[2 : 2 + n_in])
    reset = np.concatenate(resets) if resets else np.zeros(0)
    vr = float(np.mean(reset)) if reset.size else el
    return Membrane(float(c), float(gl), float(el), eta_basis, eta, vr, float(t_ref_s),
                    float(np.sqrt(rss / count)), float(1.0 - rss / count / var) if var > 0 else float("nan"),
                    tuple(float(t) for t in input_taus_s), gains)
