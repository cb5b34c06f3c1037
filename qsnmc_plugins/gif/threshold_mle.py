"""Maximum-likelihood fit of the escape-rate threshold (Pozzorini et al. 2015).

With the model's subthreshold voltage ``V`` computed by the fitted membrane with the
recorded spikes imposed (:func:`qsnmc_plugins.gif.simulate.forced_voltage`), the log hazard
``log(lambda / Hz) = b0 + b1 V - sum_k b_k H_k`` is linear in ``b`` (``H_k``: the gamma basis
summed over past spikes), and the point-process log-likelihood of the recorded spikes on the
model grid,

    L(b) = sum_spikes log lambda(t_j) - h sum_bins lambda(t_n),

is concave in ``b`` (a sum of linear and negative-exponential-of-linear terms). Every
non-refractory bin of every repetition of every stimulus enters. The optimum is found with
scipy's trust-region Newton method (``trust-exact``) with the exact gradient and Hessian;
then ``Delta_V = 1/b1``, ``V_T = -b0 Delta_V``, ``gamma_k = b_k Delta_V`` (lambda0 = 1 Hz).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qsnmc_plugins.gif.basis import ExponentialBasis
from qsnmc_plugins.gif.binning import BinnedStimulus
from qsnmc_plugins.gif.simulate import forced_voltage
from qsnmc_plugins.gif.subthreshold import Membrane
from qsnmc_plugins.gif.threshold import EscapeThreshold, VoltageCoupling

#: converged when every gradient component is below this per spike (trust-exact may stop with
#: "bad approximation" once the loss cannot decrease in floating point, at such a gradient)
GRADIENT_TOLERANCE_PER_SPIKE = 1e-5
#: the optimiser's iteration limit (it converges in tens)
MAX_ITERATIONS = 200


@dataclass(eq=False)
class LikelihoodData:
    """The design of the convex problem: one row per non-refractory bin.

    Attributes:
        features: ``(n_rows, 2 + K [+ 1])``: 1, V - v_centre (mV), -H_k and, with a voltage
            coupling, -(F_V - f_centre) (mV).
        spikes: 1.0 where the bin holds a recorded spike.
        step_s: bin width (s).
        v_centre_mV: the voltage subtracted from V (for conditioning).
        coupling_centres_mV: the mean subtracted from ``F_V`` (mV; empty without a coupling).
        coupling: the voltage coupling whose filtered drive ``F_V`` is the last column (or None).
    """

    features: np.ndarray
    spikes: np.ndarray
    step_s: float
    v_centre_mV: float
    coupling_centres_mV: tuple[float, ...] = ()
    coupling: VoltageCoupling | None = None

    @property
    def n_spikes(self) -> int:
        return int(self.spikes.sum())


def likelihood_data(membrane: Membrane, stimuli: Sequence[BinnedStimulus], gamma_basis: ExponentialBasis,
                    coupling: VoltageCoupling | None = None) -> LikelihoodData:
    """The model voltage under the recorded spikes, the gamma features and the filtered voltage
    of a ``coupling``, every repetition stacked."""
    blocks, targets = [], []
    step = stimuli[0].step_s
    for stim in stimuli:
        # the input filters run from the protocol's start, as in the membrane fits
        current = membrane.effective_current(stim.current_pA, stim.step_s)[stim.first_bin : stim.first_bin + stim.n_bins]
        for spikes in stim.spike_bins:
            v, used = forced_voltage(membrane, current, stim.step_s, spikes, effective=True)
            x = gamma_basis.spike_features(used, v.size, stim.step_s)
            y = np.zeros(v.size)
            y[used] = 1.0
            x -= y  # strict history: a spike's own kernel starts after its bin
            keep = np.isfinite(v)
            columns = [np.ones(v.size), v, -x]
            if coupling is not None:
                columns.append(-coupling.filtered(v, membrane.Vr_mV, stim.step_s)[None, :])
            blocks.append(np.vstack(columns)[:, keep].T)
            targets.append(y[keep])
    features = np.concatenate(blocks)
    centre = float(np.mean(features[:, 1]))
    features[:, 1] -= centre
    k = 2 + gamma_basis.size
    coupling_centres = -features[:, k:].mean(axis=0)
    features[:, k:] += coupling_centres
    return LikelihoodData(features, np.concatenate(targets), step, centre,
                          tuple(float(c) for c in coupling_centres), coupling)


class NegativeLogLikelihood:
    """``-L(b)`` (plus a small ridge on the gamma coefficients, ``ridge_per_spike`` times the
    spike count, which keeps the problem strictly concave), its gradient and Hessian."""

    def __init__(self, data: LikelihoodData, ridge_per_spike: float) -> None:
        self.data = data
        self.ridge = np.zeros(data.features.shape[1])
        self.ridge[2:] = ridge_per_spike * max(data.n_spikes, 1)
        self.spike_sum = data.features.T @ data.spikes

    def _rate(self, b: np.ndarray) -> np.ndarray:
        return self.data.step_s * np.exp(np.minimum(self.data.features @ b, 50.0))

    def value(self, b: np.ndarray) -> float:
        return float(-(self.spike_sum @ b) + self._rate(b).sum() + 0.5 * np.sum(self.ridge * b * b))

    def gradient(self, b: np.ndarray) -> np.ndarray:
        return -self.spike_sum + self.data.features.T @ self._rate(b) + self.ridge * b

    def hessian(self, b: np.ndarray) -> np.ndarray:
        f = self.data.features
        return (f * self._rate(b)[:, None]).T @ f + np.diag(self.ridge)

    def start(self) -> np.ndarray:
        """A feasible start: the mean rate, a shallow 0.2 / mV slope, no gamma."""
        f = self.data.features
        rate = max(self.data.n_spikes, 1) / (f.shape[0] * self.data.step_s)
        b = np.zeros(f.shape[1])
        b[1] = 0.2
        b[0] = np.log(rate) - np.log(np.mean(np.exp(0.2 * f[:, 1])))
        return b


@dataclass(frozen=True)
class ThresholdFit:
    """The fitted threshold and how the optimiser got there."""

    threshold: EscapeThreshold
    coefficients: np.ndarray
    log_likelihood: float
    n_spikes: int
    n_bins: int
    iterations: int
    success: bool
    max_gradient: float = 0.0

    def to_record(self) -> dict:
        return {**self.threshold.to_record(), "log_likelihood": self.log_likelihood,
                "log_likelihood_per_spike": self.log_likelihood / max(self.n_spikes, 1),
                "n_spikes": self.n_spikes, "n_bins": self.n_bins,
                "optimiser": "scipy.optimize.minimize trust-exact", "iterations": self.iterations,
                "converged": self.success, "max_abs_gradient": self.max_gradient}


def fit_threshold(data: LikelihoodData, gamma_basis: ExponentialBasis, ridge_per_spike: float,
                  start: np.ndarray | None = None) -> ThresholdFit:
    """Maximise the likelihood over ``(b0, b1, b_k)``; ``start`` (coefficients, centred V) defaults to :meth:`NegativeLogLikelihood.start`."""
    from scipy.optimize import minimize

    nll = NegativeLogLikelihood(data, ridge_per_spike)
    x0 = nll.start() if start is None else np.asarray(start, dtype=np.float64)
    res = minimize(nll.value, x0, jac=nll.gradient, hess=nll.hessian, method="trust-exact",
                   options={"maxiter": MAX_ITERATIONS, "gtol": 1e-6})
    b = np.array(res.x, dtype=np.float64)
    gradient = float(np.abs(nll.gradient(b)).max())
    converged = bool(res.success) or gradient < GRADIENT_TOLERANCE_PER_SPIKE * max(data.n_spikes, 1)
    uncentred = b.copy()
    k = 2 + gamma_basis.size
    uncentred[0] = b[0] - b[1] * data.v_centre_mV + float(b[k:] @ np.asarray(data.coupling_centres_mV))
    threshold = EscapeThreshold.from_coefficients(uncentred, gamma_basis, data.coupling)
    return ThresholdFit(threshold, b, -float(res.fun), data.n_spikes, int(data.features.shape[0]), int(res.nit),
                        converged, gradient)
