"""The spike rule: a (possibly adaptive) threshold on the free-running ARX voltage.

A spike starts at the first bin where ``V_t >= theta_t``, with
``theta_t = theta_0 + sum_spikes A_theta exp(-(t - t_sp) / tau_theta)`` and an
absolute refractory period; after the onset, the voltage resets through the fitted
spike-history terms. The reported spike time is the interpolated crossing plus a
fitted latency (the onset bin precedes the 0 mV crossing the recordings are timed by).
``theta_0``, ``A_theta``, ``tau_theta`` and the latency are chosen on a grid by
maximising the mean coincidence factor against the training repetitions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qsnmc import coincidence_factor
from qsnmc_plugins.arx.binning import bin_centre_s
from qsnmc_plugins.arx.free_run import current_response, generate_spikes, spike_kernel, threshold_kernel
from qsnmc_plugins.arx.identification import ArxFilter

REFRACTORY_S = 0.002  #: absolute refractory period (s)
LATENCIES_S = np.arange(-0.001, 0.0071, 0.0005)  #: candidate onset-to-spike latencies (s)
ADAPTATION_MV = (1.0, 2.0, 4.0, 8.0)  #: candidate threshold jumps (mV)
ADAPTATION_TAU_S = (0.02, 0.1, 0.5)  #: candidate threshold time constants (s)


@dataclass(frozen=True)
class SpikeRule:
    """Fitted spike rule (mV, s)."""

    threshold_mV: float
    adaptation_mV: float
    adaptation_tau_s: float
    latency_s: float
    refractory_s: float = REFRACTORY_S

    def to_record(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass
class Target:
    """Recorded spikes of one stimulus to fit against, in ``[start_s, stop_s)``.

    Attributes:
        current_pA: binned current (pA) from the protocol's start to at least ``stop_s``.
        spikes_s: recorded spike times (s) per repetition.
    """

    current_pA: np.ndarray
    spikes_s: list[np.ndarray]
    start_s: float
    stop_s: float

    def clipped(self, start_s: float, stop_s: float) -> "Target":
        return Target(
            self.current_pA,
            [t[(t >= start_s) & (t < stop_s)] for t in self.spikes_s],
            start_s,
            stop_s,
        )


def spike_times(
    model: ArxFilter, rule: SpikeRule, current_pA: np.ndarray, start_s: float, stop_s: float,
    response_mV: np.ndarray | None = None,
) -> np.ndarray:
    """Predicted spike times (s) in ``[start_s, stop_s)``, free-running from the protocol's start."""
    step = model.step_s
    v = current_response(model, current_pA) if response_mV is None else response_mV
    onsets, frac = _onsets(model, rule, v, int(np.ceil(stop_s / step)) + 1)
    t = bin_centre_s(onsets - 1, step) + frac * step + rule.latency_s
    return t[(t >= start_s) & (t < stop_s)]


def _combined_kernel(g: np.ndarray, theta: np.ndarray) -> np.ndarray:
    n = max(g.size, theta.size)
    k = np.zeros(n)
    k[: g.size] += g
    k[: theta.size] -= theta
    return k


def _onsets(model: ArxFilter, rule: SpikeRule, v: np.ndarray, stop_bin: int, g: np.ndarray | None = None):
    g = spike_kernel(model) if g is None else g
    kappa = threshold_kernel(rule.adaptation_mV, rule.adaptation_tau_s, model.step_s)
    ref = max(0, int(round(rule.refractory_s / model.step_s)) - 1)
    return generate_spikes(v - rule.threshold_mV, _combined_kernel(g, kappa), ref, stop_bin)


def mean_gamma(recorded: list[np.ndarray], predicted: np.ndarray, delta_s: float, duration_s: float) -> float:
    """Mean coincidence factor of one predicted train against every repetition (-inf if invalid)."""
    try:
        return float(np.mean([coincidence_factor(r, predicted, delta_s, duration=duration_s) for r in recorded]))
    except ValueError:  # InvalidPrediction: rate too high for the window
        return -np.inf


def evaluate(
    model: ArxFilter, rules: list[SpikeRule], targets: list[Target], delta_s: float
) -> np.ndarray:
    """Mean Gamma (over stimuli and repetitions) of each rule, shape ``(len(rules), len(LATENCIES_S))``.

    The latency of each rule is ignored: every latency of :data:`LATENCIES_S` is scored.
    """
    out = np.zeros((len(rules), LATENCIES_S.size))
    g = spike_kernel(model)
    for tg in targets:
        v = current_response(model, tg.current_pA)
        stop_bin = int(np.ceil(tg.stop_s / model.step_s)) + 1
        dur = tg.stop_s - tg.start_s
        for j, rule in enumerate(rules):
            onsets, frac = _onsets(model, rule, v, stop_bin, g)
            t0 = bin_centre_s(onsets - 1, model.step_s) + frac * model.step_s
            for m, lat in enumerate(LATENCIES_S):
                t = t0 + lat
                out[j, m] += mean_gamma(tg.spikes_s, t[(t >= tg.start_s) & (t < tg.stop_s)], delta_s, dur)
    return out / len(targets)


def fit_spike_rule(
    model: ArxFilter, targets: list[Target], delta_s: float, n_thresholds: int = 24, progress=None
) -> tuple[SpikeRule, float]:
    """Grid search of the spike rule maximising the mean Gamma on ``targets``.

    Stage 1: a fixed threshold, ``n_thresholds`` values between the median and the
    maximum of the current-driven voltage. Stage 2: thresholds within 2 mV of the
    best, crossed with every adaptive-threshold jump and time constant.

    Returns:
        ``(rule, gamma)``: the best rule and its mean Gamma on the targets.
    """
    v_all = np.concatenate([current_response(model, tg.current_pA) for tg in targets])
    lo, hi = np.percentile(v_all, 50), np.max(v_all)
    coarse = [SpikeRule(th, 0.0, 1.0, 0.0) for th in np.linspace(lo, hi, n_thresholds)]
    scores = evaluate(model, coarse, targets, delta_s)
    if progress is not None:
        progress.update(1)
    j, m = np.unravel_index(np.argmax(scores), scores.shape)
    best, best_gamma = SpikeRule(coarse[j].threshold_mV, 0.0, 1.0, LATENCIES_S[m]), scores[j, m]
    fine = [
        SpikeRule(th, amp, tau, 0.0)
        for th in best.threshold_mV + np.linspace(-2.0, 2.0, 9)
        for amp, tau in [(0.0, 1.0)] + [(a, t) for a in ADAPTATION_MV for t in ADAPTATION_TAU_S]
    ]
    scores = evaluate(model, fine, targets, delta_s)
    if progress is not None:
        progress.update(1)
    j, m = np.unravel_index(np.argmax(scores), scores.shape)
    if scores[j, m] > best_gamma:
        r = fine[j]
        best, best_gamma = SpikeRule(r.threshold_mV, r.adaptation_mV, r.adaptation_tau_s, LATENCIES_S[m]), scores[j, m]
    return best, float(best_gamma)
