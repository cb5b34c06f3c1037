"""Stage 1: subthreshold and spike-initiation parameters by the dynamic I-V method.

Badel, Lefort, Brette, Petersen, Gerstner & Richardson (2008). Dynamic I-V curves
are reliable predictors of naturalistic pyramidal-neuron voltage traces.
J Neurophysiol 99:656.

From the recorded voltage with spikes and their aftermath cut out, the membrane
equation ``dV/dt = F(V) + I(t)/C`` is used directly:

1. C, g_L and E_L: least squares of
   ``dV/dt = beta0 + beta1 V + I / C - sum_k c_k x_k(t)`` on the samples well
   below threshold (where the exponential term is negligible), where ``x_k`` is
   the recorded spike train filtered by ``exp(-t / tau_k)`` (tau_k in the setting
   ``adaptation_taus_ms``): the spike-triggered adaptation current, which
   otherwise biases E_L low and g_L high (Mensi et al. 2012, J Neurophysiol
   107:1756, fit adaptation by the same linear regression).
2. The dynamic I-V curve, the input-free part of dV/dt averaged in voltage bins,
   ``F(V) = mean(dV/dt - I/C + sum_k c_k x_k | V)``, is fitted by
   ``F(V) = (E_L - V + Delta_T exp((V - V_T)/Delta_T)) / tau_m`` (weighted least squares
   within bounds), giving tau_m = C / g_L, E_L, Delta_T and V_T.

Both fits are solved in a fixed order of operations, without LAPACK or BLAS products, so that
they give the same bits on any BLAS kernel and thread count (:mod:`qsnmc.fitting.exact`).

dV/dt is the central difference ``(V[k+1] - V[k-1]) / (2 dt)`` paired with ``V[k]``
and the mean current over those two steps. A forward difference paired with
``V[k]`` shares that sample's recording noise with opposite sign and biases the
leak upward (measured in ``benchmarks/README.md``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy.signal import lfilter

from qsnmc import TrainingStimulus, bounded_levenberg_marquardt, linear_least_squares
from qsnmc_plugins.adex.settings import AdExSettings


@dataclass(frozen=True)
class DynamicIV:
    """Result of the dynamic I-V fit (units in the field names)."""

    C_pF: float
    gL_nS: float
    EL_mV: float
    DeltaT_mV: float
    VT_mV: float
    n_samples: int
    curve_V_mV: np.ndarray  #: bin centres of the I-V curve
    curve_F_mV_per_ms: np.ndarray  #: mean F(V) in each bin
    rms_residual_mV_per_ms: float  #: RMS of the curve fit over the bins
    adaptation_pA: tuple[float, ...] = ()  #: spike-triggered current jump per time constant (pA, > 0 hyperpolarising)
    adaptation_taus_ms: tuple[float, ...] = ()  #: the time constants of ``adaptation_pA`` (ms)
    slow_tau_ms: float = 1000.0  #: kernels at or above this (ms) summarise the slow current, the others w

    @property
    def adaptation_guess(self) -> tuple[float | None, float | None]:
        """(b in pA, tau_w in ms) summarising the spike-triggered currents: their total jump
        and the jump-weighted geometric mean of their time constants; None if not hyperpolarising."""
        fast = np.array(self.adaptation_taus_ms[: len(self.adaptation_pA)]) < self.slow_tau_ms
        amps = np.clip(np.asarray(self.adaptation_pA, dtype=np.float64), 0.0, None)[fast]
        taus = np.asarray(self.adaptation_taus_ms[: len(self.adaptation_pA)])[fast]
        if amps.size == 0 or amps.sum() <= 0:
            return None, None
        tau = math.exp(math.fsum(a * math.log(t) for a, t in zip(amps, taus)) / math.fsum(amps))
        return float(amps.sum()), tau

    @property
    def slow_adaptation_guess(self) -> float:
        """b_2 (pA): the total hyperpolarising jump of the kernels at or above ``slow_tau_ms``."""
        slow = np.array(self.adaptation_taus_ms[: len(self.adaptation_pA)]) >= self.slow_tau_ms
        return float(np.clip(np.asarray(self.adaptation_pA, dtype=np.float64)[slow], 0.0, None).sum())

    def as_record(self) -> dict[str, Any]:
        """The fitted values and the fit's quality, without the binned curve (tuples as lists)."""
        skip = ("curve_V_mV", "curve_F_mV_per_ms", "slow_tau_ms")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if k not in skip}


def _samples(stim: TrainingStimulus, stop_s: float | None, settings: AdExSettings
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(V mV, dV/dt mV/ms, I pA, spike-filtered trains (n, n_taus)) of every kept sample of every repetition."""
    dt = stim.dt_s
    v_all = stim.voltage_mV
    i_win = stim.window_current_pA
    n = v_all.shape[1]
    if stop_s is not None:
        n = min(n, int(round((stop_s - stim.window_s[0]) / dt)))
    vs, ds, cs, xs = [], [], [], []
    for rep in range(v_all.shape[0]):
        v = v_all[rep, :n]
        keep = np.ones(n, dtype=bool)
        for t in stim.spike_times_s[rep]:
            k = int(np.floor((t - stim.window_s[0]) / dt))
            keep[max(0, k - int(round(settings.iv_cut_before_s / dt))) :
                 max(0, k + int(round(settings.iv_cut_after_s / dt)))] = False
        keep[0] = keep[-1] = False
        keep &= v < settings.iv_v_cap_mV
        k = np.flatnonzero(keep)
        vs.append(v[k])
        ds.append((v[k + 1] - v[k - 1]) / (2.0 * dt * 1e3))  # mV/ms
        cs.append(0.5 * (i_win[k - 1] + i_win[k]))  # the zero-order-hold current over [k-1, k+1]
        train = np.zeros(n)
        idx = np.floor((stim.spike_times_s[rep] - stim.window_s[0]) / dt).astype(np.int64)
        train[idx[(idx >= 0) & (idx < n)]] = 1.0
        xs.append(
            np.column_stack(
                [lfilter([1.0], [1.0, -math.exp(-dt * 1e3 / tau)], train)[k] for tau in settings.adaptation_taus_ms]
            )
        )
    return np.concatenate(vs), np.concatenate(ds), np.concatenate(cs), np.concatenate(xs)


def _exp(x: np.ndarray) -> np.ndarray:
    """``exp`` by the C library, element by element: NumPy's own ``exp`` takes a CPU-dependent
    path (AVX-512 or not) that rounds differently, which moved the fitted V_T in the 9th digit."""
    x = np.asarray(x, dtype=np.float64)
    return np.fromiter(map(math.exp, x.ravel()), np.float64, x.size).reshape(x.shape)


#: the exponent of the I-V model is clipped to +-this (its derivative is zero beyond)
_EXPONENT_CLIP = 50.0


def _iv_model(v: np.ndarray, tau_ms: float, el: float, delta: float, vt: float) -> np.ndarray:
    """F(V) (mV/ms) of the exponential model at the voltages ``v`` (mV)."""
    return (el - v + delta * _exp(np.clip((v - vt) / delta, -_EXPONENT_CLIP, _EXPONENT_CLIP))) / tau_ms


def _iv_jacobian(v: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F(V) and its derivatives by (tau_m, E_L, Delta_T, V_T): ((n,), (n, 4))."""
    tau, el, delta, vt = (float(x) for x in p)
    u = (v - vt) / delta
    inside = np.abs(u) < _EXPONENT_CLIP
    e = _exp(np.clip(u, -_EXPONENT_CLIP, _EXPONENT_CLIP))
    f = (el - v + delta * e) / tau
    d_delta = np.where(inside, e * (1.0 - u), e) / tau  # d(delta e^u)/d delta, u = (v - vt) / delta
    d_vt = np.where(inside, -e, 0.0) / tau
    return f, np.column_stack([-f / tau, np.full(v.size, 1.0 / tau), d_delta, d_vt])


def fit_dynamic_iv(stimuli: Sequence[TrainingStimulus], settings: AdExSettings,
                   stop_s: Sequence[float] | None = None) -> DynamicIV:
    """Fit C, g_L, E_L, Delta_T and V_T to recorded voltage (training window only).

    Args:
        stimuli: the training stimuli.
        settings: the AdEx's settings (the ``iv_*`` cuts and bins, adaptation kernels, coarse data).
        stop_s: per stimulus, use samples before this protocol time only (s); None = the whole windows.

    Raises:
        ValueError: too few subthreshold samples, or a curve fit that does not converge.
    """
    stops = [None] * len(stimuli) if stop_s is None else stop_s
    parts = [_samples(s, stop, settings) for s, stop in zip(stimuli, stops)]
    v, dvdt, cur, spk = (np.concatenate(column) for column in zip(*parts))
    if v.size < 1000:
        raise ValueError(f"dynamic I-V: only {v.size} subthreshold samples")

    # 1. Linear regression below threshold: C and first guesses of tau_m and E_L.
    beta = _membrane_regression(v, dvdt, cur, spk)
    c_pF = 1.0 / beta[2]  # pA / (mV/ms) = pF
    tau0 = -1.0 / beta[1]
    el0 = -beta[0] / beta[1]
    # 2. Dynamic I-V curve: F(V) = dV/dt - I/C, binned in V, fitted by the exponential model.
    f = dvdt - cur / c_pF - _weighted_columns(spk, beta[3:])  # pA / pF = mV/ms, adaptation removed
    centres, means, sigma = _binned_curve(v, f, settings)
    popt = _fit_iv_curve(centres, means, sigma, tau0, el0, stimuli[0].dt_s, settings)
    tau_ms, el, delta, vt = (float(x) for x in popt)
    resid = means - _iv_model(centres, *popt)
    return DynamicIV(C_pF=float(c_pF), gL_nS=float(c_pF / tau_ms), EL_mV=el, DeltaT_mV=delta, VT_mV=vt,
                     n_samples=int(v.size), curve_V_mV=centres, curve_F_mV_per_ms=means,
                     rms_residual_mV_per_ms=float(np.sqrt(np.mean(resid**2))),
                     adaptation_pA=tuple(float(-c * c_pF) for c in beta[3:]),
                     adaptation_taus_ms=tuple(settings.adaptation_taus_ms), slow_tau_ms=settings.slow_tau_ms)


def _membrane_regression(v: np.ndarray, dvdt: np.ndarray, cur: np.ndarray, spk: np.ndarray) -> np.ndarray:
    """Least squares of ``dV/dt = b0 + b1 V + I / C - sum_k c_k x_k`` on the samples below the
    60th voltage percentile: ``(b0, b1, 1 / C, -c_1, ...)`` (mV/ms, 1/ms, 1/pF, mV/ms).

    Raises:
        ValueError: a non-physical membrane (1 / C <= 0 or b1 >= 0).
    """
    low = v < np.percentile(v, 60)
    design = np.column_stack([np.ones(low.sum()), v[low], cur[low], spk[low]])
    beta = linear_least_squares(design, dvdt[low])
    if beta[2] <= 0 or beta[1] >= 0:
        raise ValueError(f"dynamic I-V: regression gives a non-physical membrane (coefficients {beta})")
    return beta


def _weighted_columns(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``x @ weights`` column by column in a fixed order (a BLAS product's sums depend on the kernel)."""
    out = np.zeros(x.shape[0])
    for k, w in enumerate(weights):
        out = out + x[:, k] * float(w)
    return out


def _binned_curve(v: np.ndarray, f: np.ndarray, settings: AdExSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``f`` (mV/ms) in voltage bins of ``iv_bin_mV`` up to ``iv_v_cap_mV`` with at least
    ``iv_min_bin_samples`` samples: (bin centres in mV, means, 1 / sqrt(count) as the fit's sigma)."""
    edges = np.arange(np.floor(v.min()), settings.iv_v_cap_mV + settings.iv_bin_mV, settings.iv_bin_mV)
    which = np.digitize(v, edges) - 1
    counts = np.bincount(which, minlength=edges.size)[: edges.size - 1]
    sums = np.bincount(which, weights=f, minlength=edges.size)[: edges.size - 1]
    ok = counts >= settings.iv_min_bin_samples
    centres = 0.5 * (edges[:-1] + edges[1:])[ok]
    return centres, sums[ok] / counts[ok], 1.0 / np.sqrt(counts[ok])


def _fit_iv_curve(centres: np.ndarray, means: np.ndarray, sigma: np.ndarray, tau0: float, el0: float,
                  dt_s: float, settings: AdExSettings) -> np.ndarray:
    """Weighted least squares (weights ``1 / sigma``) of :func:`_iv_model` to the binned curve within
    bounds: (tau_m ms, E_L, Delta_T, V_T mV).

    Raises:
        ValueError: the curve fit failed.
    """
    vt0 = float(centres[-1]) - 5.0
    # A spike's upstroke lasts well under a millisecond: sampled coarser than 0.25 ms it
    # is not resolved and the curve fit drifts to its upper bound on Delta_T. Bound it
    # then by the range measured in cortical pyramidal cells (Badel et al. 2008: ~1-3 mV).
    max_delta = 20.0 if dt_s <= settings.coarse_dt_s else settings.coarse_max_delta_t_mV
    p0 = (tau0, el0, min(2.0, 0.5 * max_delta), vt0)
    lower, upper = np.array([0.5, -110.0, 0.1, -80.0]), np.array([500.0, -20.0, max_delta, -10.0])

    def residuals(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, jac = _iv_jacobian(centres, p)
        return (f - means) / sigma, jac / sigma[:, None]

    try:
        return bounded_levenberg_marquardt(residuals, np.array(p0), lower, upper)
    except ValueError as exc:
        raise ValueError(f"dynamic I-V curve fit failed: {exc}") from exc
