"""The spike rule: a (possibly adaptive) threshold on the free-running ARX voltage.

A spike starts at the first bin where ``V_t >= theta_t``, with
``theta_t = theta_0 + sum_spikes A_theta exp(-(t - t_sp) / tau_theta)`` and an
absolute refractory period; after the onset, the voltage resets through the fitted
spike-history terms. The reported spike time is the interpolated crossing plus a
fitted latency (the onset bin precedes the 0 mV crossing the recordings are timed by).
``theta_0``, ``A_theta`` (signed) and ``tau_theta`` are fitted by a bounded global search
(differential evolution) started from a grid of fixed thresholds, every latency of a grid
scored for each; the score is the competition's (Gamma/R per stimulus with R >= 0.3, equal
weights, :class:`qsnmc.ValidationScore`) minus a penalty on wrong spike counts.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from qsnmc import CountPenalty, ValidationScore, clip_to_window, score_trains, stretch_reliability
from qsnmc_plugins.arx.free_run import current_response, generate_spikes, spike_kernel, threshold_kernel
from qsnmc_plugins.arx.identification import ArxFilter
from qsnmc_plugins.arx.settings import ArxSettings


@dataclass(frozen=True)
class SpikeRule:
    """Fitted spike rule (mV, s)."""

    threshold_mV: float
    adaptation_mV: float
    adaptation_tau_s: float
    latency_s: float
    refractory_s: float

    def to_record(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass
class Target:
    """Recorded spikes of one stimulus to fit against, in ``[start_s, stop_s)``."""

    current_pA: np.ndarray  #: binned current (pA) from the protocol's start to at least ``stop_s``.
    spikes_s: list[np.ndarray]  #: recorded spike times (s) per repetition.
    start_s: float
    stop_s: float
    name: str = ""
    _reliability: dict = field(default_factory=dict, repr=False)

    def clipped(self, start_s: float, stop_s: float) -> "Target":
        return Target(self.current_pA, [clip_to_window(t, (start_s, stop_s)) for t in self.spikes_s],
                      start_s, stop_s, self.name)

    def reliability(self, delta_s: float) -> float:
        """R of the recorded repetitions in the target's stretch (NaN with fewer than 2)."""
        if delta_s not in self._reliability:  # it depends on the recordings only: computed once
            self._reliability[delta_s] = stretch_reliability(self.spikes_s, (self.start_s, self.stop_s), delta_s)
        return self._reliability[delta_s]


def spike_times(model: ArxFilter, rule: SpikeRule, current_pA: np.ndarray, start_s: float,
                stop_s: float) -> np.ndarray:
    """Predicted spike times (s) in ``[start_s, stop_s)``, free-running from the protocol's start."""
    t = _crossings_s(model, rule, current_response(model, current_pA), stop_s) + rule.latency_s
    return clip_to_window(t, (start_s, stop_s))


def _crossings_s(model: ArxFilter, rule: SpikeRule, v: np.ndarray, stop_s: float,
                 g: np.ndarray | None = None) -> np.ndarray:
    """Interpolated threshold crossings (s, before the latency) of the rule on the current-driven voltage ``v``
    (mV); ``g``: the model's spike kernel, if already computed. An onset at bin ``k`` crosses ``frac`` of a
    bin after the centre of bin ``k - 1`` (bin ``k`` covers ``[k*step, (k+1)*step)``)."""
    g = spike_kernel(model) if g is None else g
    kappa = threshold_kernel(rule.adaptation_mV, rule.adaptation_tau_s, model.step_s)
    kernel = np.zeros(max(g.size, kappa.size))  # what a spike adds to V - theta
    kernel[: g.size] += g
    kernel[: kappa.size] -= kappa
    ref = max(0, int(round(rule.refractory_s / model.step_s)) - 1)
    stop_bin = int(np.ceil(stop_s / model.step_s)) + 1
    onsets, frac = generate_spikes(v - rule.threshold_mV, kernel, ref, stop_bin)
    return (np.asarray(onsets - 1, dtype=np.float64) + 0.5) * model.step_s + frac * model.step_s


def score_rule(model: ArxFilter, rule: SpikeRule, targets: list[Target], delta_s: float) -> ValidationScore:
    """One rule (its own latency) scored the competition's way on every target."""
    return ValidationScore(tuple(
        score_trains(tg.name, tg.spikes_s, spike_times(model, rule, tg.current_pA, tg.start_s, tg.stop_s),
                     (tg.start_s, tg.stop_s), delta_s, reliability=tg.reliability(delta_s)) for tg in targets))


def evaluate(model: ArxFilter, rules: list[SpikeRule], targets: list[Target], delta_s: float,
             penalty: CountPenalty, latencies: np.ndarray) -> np.ndarray:
    """``penalty.objective`` of each rule at every latency (s), shape ``(len(rules), len(latencies))``.

    The latency of each rule is ignored: every latency of ``latencies`` is scored.
    """
    g = spike_kernel(model)
    per = [[[] for _ in latencies] for _ in rules]  # [rule][latency] -> HeldOutScore per target
    for tg in targets:
        v, window, r = current_response(model, tg.current_pA), (tg.start_s, tg.stop_s), tg.reliability(delta_s)
        for j, rule in enumerate(rules):
            t0 = _crossings_s(model, rule, v, tg.stop_s, g)
            for m, lat in enumerate(latencies):
                per[j][m].append(score_trains(tg.name, tg.spikes_s, clip_to_window(t0 + lat, window), window,
                                              delta_s, reliability=r))
    return np.array([[penalty.objective(ValidationScore(tuple(sc))) for sc in row] for row in per])


def fit_spike_rule(model: ArxFilter, targets: list[Target], delta_s: float, settings: ArxSettings, *,
                   budget: float, seed: int, progress) -> tuple[SpikeRule, dict]:
    """Fit the spike rule maximising the objective (P minus ``settings``' count penalty) on ``targets``.

    Stage 1: a fixed threshold, ``n_thresholds`` values between the median and the
    maximum of the current-driven voltage, every latency of the grid. Stage 2: differential
    evolution of ``(theta_0, A_theta, log10 tau_theta, latency)`` within ``threshold_range_mV``
    of the best fixed threshold, ``adaptation_bounds_mV``, ``adaptation_tau_bounds_s`` and the
    latency grid's range, started from the stage-1 optimum (``generations`` x ``budget``).

    Returns:
        ``(rule, search record)``: the best rule; its objective, the objective's evaluations, the
        bounds searched and the parameters that end within 1 % of one (``at_a_bound``).
    """
    from scipy.optimize import differential_evolution

    penalty = CountPenalty(settings.count_penalty, settings.count_error_stimuli)
    best, best_value = _best_fixed_threshold(model, targets, delta_s, settings, penalty)
    progress.update(1)
    bounds = _search_bounds(best.threshold_mV, settings)
    ref = settings.refractory_s

    def loss(x: np.ndarray) -> float:
        return -float(evaluate(model, [_rule(x, ref)], targets, delta_s, penalty, np.array([x[3] * 1e-3]))[0, 0])

    generations = max(2, int(round(settings.generations * budget)))
    result = differential_evolution(loss, bounds, maxiter=generations, popsize=settings.popsize,
                                    init="latinhypercube", seed=seed, tol=0.0, polish=False,
                                    x0=np.array([best.threshold_mV, 0.0, np.log10(0.1), 1e3 * best.latency_s]))
    if -float(result.fun) > best_value:
        best, best_value = _rule(result.x, ref), -float(result.fun)
    progress.update(1)
    record_bounds = {"threshold_mV": [float(b) for b in bounds[0]], "adaptation_mV": list(bounds[1]),
                     "adaptation_tau_s": list(settings.adaptation_tau_bounds_s), "latency_ms": list(bounds[3])}
    return best, {"objective": best_value, "evaluations": int(result.nfev) + settings.n_thresholds,
                  "bounds": record_bounds, "at_a_bound": _at_a_bound(best, bounds)}


def _rule(x: np.ndarray, refractory_s: float) -> SpikeRule:
    """The rule of a search point ``(theta_0 mV, A_theta mV, log10 tau_theta/s, latency ms)``."""
    return SpikeRule(float(x[0]), float(x[1]), float(10.0 ** x[2]), float(x[3]) * 1e-3, refractory_s)


def _best_fixed_threshold(model: ArxFilter, targets: list[Target], delta_s: float, settings: ArxSettings,
                          penalty: CountPenalty) -> tuple[SpikeRule, float]:
    """Stage 1: the best fixed threshold and latency on a grid, and its objective."""
    v_all = np.concatenate([current_response(model, tg.current_pA) for tg in targets])
    lo, hi = np.percentile(v_all, 50), np.max(v_all)
    ref, lats = settings.refractory_s, np.arange(*settings.latency_grid_s)  # latencies tried (s)
    coarse = [SpikeRule(th, 0.0, 1.0, 0.0, ref) for th in np.linspace(lo, hi, settings.n_thresholds)]
    scores = evaluate(model, coarse, targets, delta_s, penalty, lats)
    j, m = np.unravel_index(np.argmax(scores), scores.shape)
    return SpikeRule(coarse[j].threshold_mV, 0.0, 1.0, lats[m], ref), float(scores[j, m])


def _search_bounds(threshold_mV: float, settings: ArxSettings) -> list[tuple[float, float]]:
    """Bounds of ``(theta_0 mV, A_theta mV, log10 tau_theta/s, latency ms)`` around a fixed threshold."""
    lats = np.arange(*settings.latency_grid_s)
    return [(threshold_mV - settings.threshold_range_mV, threshold_mV + settings.threshold_range_mV),
            tuple(settings.adaptation_bounds_mV),
            tuple(float(b) for b in np.log10(settings.adaptation_tau_bounds_s)),
            (1e3 * float(lats[0]), 1e3 * float(lats[-1]))]


def _at_a_bound(best: SpikeRule, bounds: list[tuple[float, float]]) -> list[str]:
    """The searched parameters of ``best`` within 1 % of a bound (none of the adaptation's when it is off)."""
    at = []
    names = ("threshold_mV", "adaptation_mV", "adaptation_tau_s", "latency_s")
    x = (best.threshold_mV, best.adaptation_mV, np.log10(best.adaptation_tau_s), 1e3 * best.latency_s)
    for name, v, (b0, b1) in zip(names, x, bounds):
        if best.adaptation_mV == 0.0 and name.startswith("adaptation"):
            continue  # the fixed threshold of stage 1 won: no adaptation parameters
        if v <= b0 + 0.01 * (b1 - b0) or v >= b1 - 0.01 * (b1 - b0):
            at.append(name)
    return at
