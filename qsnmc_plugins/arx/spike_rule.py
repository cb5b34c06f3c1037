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

from qsnmc import ValidationScore, coincidence_factor, intrinsic_reliability, score_trains
from qsnmc_plugins.arx.binning import bin_centre_s
from qsnmc_plugins.arx.free_run import current_response, generate_spikes, spike_kernel, threshold_kernel
from qsnmc_plugins.arx.identification import ArxFilter

REFRACTORY_S = 0.002  #: absolute refractory period (s)
LATENCIES_S = np.arange(-0.001, 0.0071, 0.0005)  #: candidate onset-to-spike latencies (s)
ADAPTATION_BOUNDS_MV = (-3.0, 30.0)  #: search range of the threshold jump (mV)
ADAPTATION_TAU_BOUNDS_S = (0.005, 2.0)  #: search range of the threshold time constant (s)
THRESHOLD_RANGE_MV = 6.0  #: the threshold is searched within this distance of the best fixed one (mV)
GENERATIONS = 20  #: differential-evolution generations at budget 1
POPSIZE = 6  #: population per searched parameter


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
    name: str = ""
    _reliability: dict = field(default_factory=dict, repr=False)

    def clipped(self, start_s: float, stop_s: float) -> "Target":
        return Target(
            self.current_pA,
            [t[(t >= start_s) & (t < stop_s)] for t in self.spikes_s],
            start_s,
            stop_s,
            self.name,
        )

    def reliability(self, delta_s: float) -> float:
        """R of the recorded repetitions in the target's stretch (NaN with fewer than 2)."""
        if delta_s not in self._reliability:  # it depends on the recordings only: computed once
            self._reliability[delta_s] = float("nan") if len(self.spikes_s) < 2 else intrinsic_reliability(
                self.spikes_s, delta_s, duration=self.stop_s - self.start_s)
        return self._reliability[delta_s]


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


def score_rule(model: ArxFilter, rule: SpikeRule, targets: list[Target], delta_s: float) -> ValidationScore:
    """One rule (its own latency) scored the competition's way on every target."""
    out = []
    for tg in targets:
        pred = spike_times(model, rule, tg.current_pA, tg.start_s, tg.stop_s)
        out.append(score_trains(tg.name, tg.spikes_s, pred, (tg.start_s, tg.stop_s), delta_s,
                                reliability=tg.reliability(delta_s)))
    return ValidationScore(tuple(out))


def objective(score: ValidationScore, count_penalty: float) -> float:
    """P minus ``count_penalty`` x mean |ln count ratio| over every stimulus (low-R ones included)."""
    return score.performance - count_penalty * score.count_error(every_stimulus=True)


def evaluate(
    model: ArxFilter, rules: list[SpikeRule], targets: list[Target], delta_s: float, count_penalty: float = 0.0,
    latencies_s: np.ndarray = LATENCIES_S,
) -> np.ndarray:
    """Objective of each rule at every latency of ``latencies_s``, shape ``(len(rules), len(latencies_s))``.

    The latency of each rule is ignored: every latency of ``latencies_s`` is scored.
    """
    g = spike_kernel(model)
    rel = [tg.reliability(delta_s) for tg in targets]
    per = [[[] for _ in latencies_s] for _ in rules]  # [rule][latency] -> HeldOutScore per target
    for tg, r in zip(targets, rel):
        v = current_response(model, tg.current_pA)
        stop_bin = int(np.ceil(tg.stop_s / model.step_s)) + 1
        for j, rule in enumerate(rules):
            onsets, frac = _onsets(model, rule, v, stop_bin, g)
            t0 = bin_centre_s(onsets - 1, model.step_s) + frac * model.step_s
            for m, lat in enumerate(latencies_s):
                t = t0 + lat
                per[j][m].append(score_trains(tg.name, tg.spikes_s, t[(t >= tg.start_s) & (t < tg.stop_s)],
                                              (tg.start_s, tg.stop_s), delta_s, reliability=r))
    return np.array([[objective(ValidationScore(tuple(sc)), count_penalty) for sc in row] for row in per])


@dataclass
class RuleSearch:
    """How the spike rule was found (for the fit record)."""

    objective: float
    evaluations: int
    bounds: dict
    at_a_bound: list[str]

    def to_record(self) -> dict:
        return asdict(self)


def fit_spike_rule(
    model: ArxFilter, targets: list[Target], delta_s: float, n_thresholds: int = 24, progress=None, *,
    count_penalty: float = 0.0, budget: float = 1.0, seed: int = 0,
) -> tuple[SpikeRule, RuleSearch]:
    """Fit the spike rule maximising :func:`objective` on ``targets``.

    Stage 1: a fixed threshold, ``n_thresholds`` values between the median and the
    maximum of the current-driven voltage. Stage 2: differential evolution of
    ``(theta_0, A_theta, log10 tau_theta, latency)`` within :data:`THRESHOLD_RANGE_MV` of the
    best fixed threshold, :data:`ADAPTATION_BOUNDS_MV`, :data:`ADAPTATION_TAU_BOUNDS_S` and the
    range of :data:`LATENCIES_S`, started from the stage-1 optimum.

    Returns:
        ``(rule, search)``: the best rule, its objective and where it lies in the bounds.
    """
    from scipy.optimize import differential_evolution

    v_all = np.concatenate([current_response(model, tg.current_pA) for tg in targets])
    lo, hi = np.percentile(v_all, 50), np.max(v_all)
    coarse = [SpikeRule(th, 0.0, 1.0, 0.0) for th in np.linspace(lo, hi, n_thresholds)]
    scores = evaluate(model, coarse, targets, delta_s, count_penalty)
    if progress is not None:
        progress.update(1)
    j, m = np.unravel_index(np.argmax(scores), scores.shape)
    best, best_value = SpikeRule(coarse[j].threshold_mV, 0.0, 1.0, LATENCIES_S[m]), float(scores[j, m])
    th0 = best.threshold_mV
    bounds = [(th0 - THRESHOLD_RANGE_MV, th0 + THRESHOLD_RANGE_MV), ADAPTATION_BOUNDS_MV,
              tuple(float(b) for b in np.log10(ADAPTATION_TAU_BOUNDS_S)),
              (1e3 * float(LATENCIES_S[0]), 1e3 * float(LATENCIES_S[-1]))]

    def rule(x: np.ndarray) -> SpikeRule:
        return SpikeRule(float(x[0]), float(x[1]), float(10.0 ** x[2]), float(x[3]) * 1e-3)

    def loss(x: np.ndarray) -> float:
        return -float(evaluate(model, [rule(x)], targets, delta_s, count_penalty, np.array([x[3] * 1e-3]))[0, 0])

    generations = max(2, int(round(GENERATIONS * budget)))
    result = differential_evolution(loss, bounds, maxiter=generations, popsize=POPSIZE, init="latinhypercube",
                                    seed=seed, tol=0.0, polish=False,
                                    x0=np.array([th0, 0.0, np.log10(0.1), 1e3 * best.latency_s]))
    if -float(result.fun) > best_value:
        best, best_value = rule(result.x), -float(result.fun)
    if progress is not None:
        progress.update(1)
    at = []
    names = ("threshold_mV", "adaptation_mV", "adaptation_tau_s", "latency_s")
    x = (best.threshold_mV, best.adaptation_mV, np.log10(best.adaptation_tau_s), 1e3 * best.latency_s)
    for name, v, (b0, b1) in zip(names, x, bounds):
        if best.adaptation_mV == 0.0 and name.startswith("adaptation"):
            continue  # the fixed threshold of stage 1 won: no adaptation parameters
        if v <= b0 + 0.01 * (b1 - b0) or v >= b1 - 0.01 * (b1 - b0):
            at.append(name)
    record_bounds = {"threshold_mV": [float(b) for b in bounds[0]], "adaptation_mV": list(ADAPTATION_BOUNDS_MV),
                     "adaptation_tau_s": list(ADAPTATION_TAU_BOUNDS_S), "latency_ms": list(bounds[3])}
    return best, RuleSearch(best_value, int(result.nfev) + n_thresholds, record_bounds, at)
