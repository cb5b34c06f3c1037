"""Stage 2: reset, adaptation and threshold offset by maximising the coincidence factor.

The spike-initiation and subthreshold parameters come from the dynamic I-V fit
(stage 1); this stage searches the reset's depth below V_T (V_r = V_T - gap, so the
reset stays below the threshold), a, b, tau_w, an offset of V_T, a slow
spike-triggered current (b_2, tau_w2) and, for coarsely sampled data, Delta_T, with
SciPy's differential evolution (Storn & Price 1997) in its vectorised form: every
generation is one Brian2 run of the whole population on every stimulus (one neuron per
candidate and column, each stimulus' fit window cut into segments run side by side, see
:func:`qsnmc_plugins.adex.simulate.simulate_stimuli_segmented`, at the model's
integration step, with the current averaged over it). The objective is the mean
Gamma (Kistler et al. 1997; Naud et al. 2011, counted without replacement) of the
candidate's deterministic train against every training repetition inside the fit
window, per stimulus divided by that stimulus' R there; stimuli weigh equally and those
whose R is under 0.3 are left out (the competition's rule, :class:`qsnmc.ValidationScore`),
minus ``count_penalty`` times the mean |ln| ratio of predicted to recorded spike counts
(:class:`StimulusScoring`). The last part of the training window is never seen by the optimiser; the
top candidates of the last generation are re-simulated continuously over the whole
training window, each shifted by the spike latency (from :data:`LATENCY_GRID_MS`) that
scores best on the fit windows, and the one with the best held-out score is kept.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import differential_evolution

from qsnmc import TrainingStimulus, ValidationScore, intrinsic_reliability, score_trains
from qsnmc_plugins.adex.parameters import AdExParameters
from qsnmc_plugins.adex.simulate import coarsen_current, simulate_stimuli_segmented

#: score given to a candidate whose simulation blew up (as low as an invalid prediction's Gamma)
PENALTY_GAMMA = -1.0

#: the searched coordinates, in DE-vector order (``DeltaT_mV`` only for coarsely sampled data)
SEARCH_NAMES = ("reset_gap_mV", "a_nS", "b_pA", "log10_tauw_ms", "dVT_mV", "b2_pA", "log10_tauw2_ms")
#: the reset lies at least this far below V_T (mV): above it the AdEx fires tonically
MIN_RESET_GAP_MV = 1.0
#: range of the slow spike-triggered current's time constant (ms)
TAUW2_RANGE_MS = (1000.0, 30000.0)
#: spike latencies tried on the chosen candidates (ms): a pure shift, scored without re-simulation
LATENCY_GRID_MS = tuple(np.round(np.arange(-6.0, 3.01, 0.25), 2))


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the stage-2 search, derived from the stage-1 membrane.

    V_r = V_T - gap, gap between 1 mV and V_T - E_L + 10 mV (the reset stays below the
    threshold); a between 0 and 2 g_L; b between 0 and g_L * 30 mV (a current that would
    hold the membrane 30 mV below rest); tau_w between 10 and 500 ms (log scale); V_T
    offset within +-6 mV; the slow current's b_2 between 0 and g_L * 5 mV, tau_w2 in
    :data:`TAUW2_RANGE_MS` (log scale); with ``search_delta_t`` also Delta_T between 0.5 and 4 mV.
    """

    bounds: tuple[tuple[float, float], ...]
    x0: tuple[float, ...]
    names: tuple[str, ...] = SEARCH_NAMES

    @classmethod
    def around(
        cls, base: AdExParameters, b_guess_pA: float | None = None, tauw_guess_ms: float | None = None,
        search_delta_t: bool = False, b2_guess_pA: float | None = None,
    ) -> "SearchSpace":
        """Bounds around the stage-1 membrane; the starting member uses the stage-1
        spike-triggered adaptation estimates when given."""
        bounds = [
            (MIN_RESET_GAP_MV, max(MIN_RESET_GAP_MV + 1.0, base.VT_mV - base.EL_mV + 10.0)),
            (0.0, 2.0 * base.gL_nS),
            (0.0, 30.0 * base.gL_nS),
            (1.0, np.log10(500.0)),
            (-6.0, 6.0),
            (0.0, 5.0 * base.gL_nS),
            tuple(np.log10(TAUW2_RANGE_MS)),
        ]
        x0 = [
            float(np.clip(base.VT_mV - base.EL_mV - 10.0, *bounds[0])),
            0.2 * base.gL_nS,
            4.0 * base.gL_nS if b_guess_pA is None else float(np.clip(b_guess_pA, *bounds[2])),
            2.0 if tauw_guess_ms is None else float(np.clip(np.log10(max(tauw_guess_ms, 1e-3)), *bounds[3])),
            0.0,
            0.0 if b2_guess_pA is None else float(np.clip(b2_guess_pA, *bounds[5])),
            float(np.mean(bounds[6])),
        ]
        names = SEARCH_NAMES
        if search_delta_t:
            bounds.append((0.5, 4.0))
            x0.append(float(np.clip(base.DeltaT_mV, 0.5, 4.0)))
            names = names + ("DeltaT_mV",)
        return cls(tuple(tuple(float(v) for v in b) for b in bounds), tuple(x0), names)

    @property
    def max_tauw_ms(self) -> float:
        return float(10 ** self.bounds[3][1])

    def apply(self, base: AdExParameters, x: Sequence[float]) -> AdExParameters:
        """The parameter set a DE vector stands for."""
        v = dict(zip(self.names, (float(e) for e in x)))
        vt = base.VT_mV + v["dVT_mV"]
        changes = dict(Vr_mV=vt - v["reset_gap_mV"], a_nS=v["a_nS"], b_pA=v["b_pA"], tauw_ms=10.0 ** v["log10_tauw_ms"],
                       VT_mV=vt, b2_pA=v["b2_pA"], tauw2_ms=10.0 ** v["log10_tauw2_ms"])
        if "DeltaT_mV" in v:
            changes["DeltaT_mV"] = v["DeltaT_mV"]
        return base.with_values(**changes)


@dataclass(frozen=True)
class Windows:
    """Where the training window is used for fitting and for validation (s, protocol time)."""

    fit: tuple[float, float]
    held_out: tuple[float, float]

    @classmethod
    def split(cls, window_s: tuple[float, float], held_out_fraction: float) -> "Windows":
        start, stop = window_s
        cut = stop - held_out_fraction * (stop - start)
        return cls((start, cut), (cut, stop))


def _in_window(train: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    lo, hi = window
    return train[(train >= lo) & (train < hi)]


class StimulusScoring:
    """Candidates scored the competition's way on one window kind of every stimulus.

    The recordings cut to each stimulus' ``"fit"`` or ``"held_out"`` window, with their R,
    are fixed; a candidate's trains are scored by :func:`qsnmc.score_trains` and combined by
    :class:`qsnmc.ValidationScore` (Gamma/R per stimulus, R floor, equal weights), minus
    ``count_penalty`` x its mean |log| spike-count ratio.
    """

    def __init__(self, stimuli: Sequence[TrainingStimulus], windows_by_stimulus: Sequence[Windows],
                 delta_s: float, count_penalty: float) -> None:
        self.names = [s.name for s in stimuli]
        self.windows = {kind: [getattr(w, kind) for w in windows_by_stimulus] for kind in ("fit", "held_out")}
        self.delta_s = delta_s
        self.count_penalty = float(count_penalty)
        self.recordings = {kind: [[_in_window(t, win) for t in s.spike_times_s] for s, win in zip(stimuli, wins)]
                           for kind, wins in self.windows.items()}
        self.reliability = {
            kind: [intrinsic_reliability(rec, delta_s, duration=win[1] - win[0]) if len(rec) >= 2 else float("nan")
                   for rec, win in zip(recs, self.windows[kind])]
            for kind, recs in self.recordings.items()
        }

    def validation(self, trains: Sequence[np.ndarray], kind: str) -> ValidationScore:
        """One candidate's score from its train on each stimulus (s, protocol time)."""
        return ValidationScore(tuple(
            score_trains(name, rec, _in_window(train, win), win, self.delta_s, reliability=r)
            for name, rec, train, win, r in zip(self.names, self.recordings[kind], trains, self.windows[kind],
                                                self.reliability[kind])
        ))

    def score(self, validation: ValidationScore) -> float:
        return validation.performance - self.count_penalty * validation.log_count_error

    def describe(self) -> dict[str, Any]:
        return {"count_penalty": self.count_penalty,
                "reliability": {kind: {n: (float(x) if np.isfinite(x) else None) for n, x in zip(self.names, r)}
                                for kind, r in self.reliability.items()}}


@dataclass
class GenerationLog:
    """What the optimiser saw: one entry per Brian2 run (a DE generation)."""

    best_score: list[float] = field(default_factory=list)
    mean_score: list[float] = field(default_factory=list)
    n_blown_up: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    last_x: np.ndarray | None = None
    last_scores: np.ndarray | None = None


class GammaObjective:
    """Vectorised DE objective: minus each candidate's fit-window score (:class:`StimulusScoring`).

    Args:
        stimuli: the training stimuli (all are fitted, in one Brian2 run per generation).
        base: the stage-1 parameters the DE vectors modify.
        windows_by_stimulus: fit / held-out windows of each stimulus.
        delta_s: coincidence window (s).
        n_segments: segments of each stimulus run side by side (see ``simulate_stimuli_segmented``).
        warmup_s: warm-up before each segment (s).
        step_factor: the simulation step is this many recording steps (``1 / n``: n substeps per sample).
        count_penalty: weight of the spike-count error in the score.
        on_generation: called after each run with the best score seen so far.
        space: the search space whose vectors the optimiser passes (default: around ``base``).
    """

    def __init__(
        self,
        stimuli: Sequence[TrainingStimulus],
        base: AdExParameters,
        windows_by_stimulus: Sequence[Windows],
        delta_s: float,
        n_segments: int,
        warmup_s: float,
        step_factor: float = 1,
        on_generation: Callable[[float], None] | None = None,
        count_penalty: float = 0.0,
        space: SearchSpace | None = None,
    ) -> None:
        self.stimuli = list(stimuli)
        self.base = base
        self.space = space if space is not None else SearchSpace.around(base)
        self.windows = list(windows_by_stimulus)
        self.delta_s = delta_s
        self.n_segments = n_segments
        self.warmup_s = warmup_s
        self.on_generation = on_generation
        self.step_factor = step_factor
        self.currents = [coarsen_current(s.current_pA, step_factor) for s in self.stimuli]
        self.log = GenerationLog()
        self.best_so_far = -np.inf
        self.scoring = StimulusScoring(self.stimuli, self.windows, delta_s, count_penalty)

    def gammas(self, population: Sequence[AdExParameters]) -> tuple[np.ndarray, int]:
        """Fit-window score of each parameter set (:class:`StimulusScoring`) and the blow-up count."""
        dt = self.stimuli[0].dt_s * self.step_factor
        runs = simulate_stimuli_segmented(population, self.currents, dt, [w.fit[1] for w in self.windows],
                                          self.n_segments, self.warmup_s)
        blown = np.zeros(len(population), dtype=bool)
        for res in runs:
            blown |= ~res.finite
        scores = np.array([self.scoring.score(self.scoring.validation([r.spike_times_s[j] for r in runs], "fit"))
                           for j in range(len(population))])
        scores[blown] = PENALTY_GAMMA
        return scores, int(blown.sum())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x``: shape ``(n_coordinates, n_candidates)``; returns ``-Gamma`` per candidate."""
        t0 = time.perf_counter()
        xs = np.atleast_2d(np.asarray(x, dtype=np.float64))
        population = [self.space.apply(self.base, xs[:, j]) for j in range(xs.shape[1])]
        scores, n_blown = self.gammas(population)
        self.best_so_far = max(self.best_so_far, float(scores.max()))
        self.log.best_score.append(float(scores.max()))
        self.log.mean_score.append(float(scores.mean()))
        self.log.n_blown_up.append(n_blown)
        self.log.seconds.append(time.perf_counter() - t0)
        if self.on_generation is not None:
            self.on_generation(self.best_so_far)
        return -scores


@dataclass
class Stage2Result:
    """The chosen parameters and how they were chosen."""

    params: AdExParameters
    #: continuous simulation, fit window: the objective's score (:class:`StimulusScoring`)
    fit_score: float
    held_out_score: float  #: the same over the held-out window (what chose ``params``)
    held_out_performance: float  #: its Gamma/R part alone (no count penalty)
    segmented_fit_score: float  #: the optimiser's (segmented) estimate of fit_score
    scoring: dict[str, Any]  #: the score's settings and the reliabilities it divides by
    candidates: list[dict[str, Any]]
    log: GenerationLog
    de_message: str
    n_evaluations: int
    held_out_per_stimulus: dict[str, Any] = field(default_factory=dict)  #: ValidationScore.per_stimulus() of params
    searched: tuple[str, ...] = SEARCH_NAMES


def fit_stage2(
    stimuli: Sequence[TrainingStimulus],
    base: AdExParameters,
    windows_by_stimulus: Sequence[Windows],
    delta_s: float,
    *,
    generations: int,
    population: int,
    n_segments: int,
    seed: int,
    n_validated: int = 8,
    step_factor: float = 1,
    warmup_s: float | None = None,
    on_generation: Callable[[float], None] | None = None,
    b_guess_pA: float | None = None,
    tauw_guess_ms: float | None = None,
    b2_guess_pA: float | None = None,
    search_delta_t: bool = False,
    count_penalty: float = 0.0,
) -> Stage2Result:
    """Run the differential evolution, then validate the best candidates on the held-out part.

    Args:
        generations: DE generations after the initial population (one Brian2 run each).
        population: candidates per generation (rounded to a multiple of the coordinates).
        n_segments: segments of each stimulus' fit window simulated side by side.
        seed: seeds the optimiser (the simulation itself is deterministic).
        n_validated: top candidates of the last generation re-simulated over the whole
            training window; each gets the latency of :data:`LATENCY_GRID_MS` that scores best
            on the fit windows, and the one with the best held-out score is kept.
        step_factor: simulation step in recording steps (prediction must use the same).
        warmup_s: warm-up of each segment (s); default twice the largest tau_w. The slow
            current (tau_w2 of seconds) is not warmed up: with several segments per stimulus
            (one-stimulus data) the search sees it only in part; the continuous validation
            runs see it whole.
        b_guess_pA, tauw_guess_ms, b2_guess_pA: stage-1 estimates of the spike-triggered
            adaptation, used for the starting member of the population.
        search_delta_t: also search Delta_T (data too coarse for stage 1 to resolve it).
        count_penalty: weight of the spike-count error in the score (:class:`StimulusScoring`).
    """
    space = SearchSpace.around(base, b_guess_pA, tauw_guess_ms, search_delta_t, b2_guess_pA)
    if warmup_s is None:
        warmup_s = 2.0 * space.max_tauw_ms * 1e-3
    objective = GammaObjective(
        stimuli, base, windows_by_stimulus, delta_s, n_segments, warmup_s, step_factor, on_generation, count_penalty,
        space,
    )
    result = _differential_evolution(objective, space, population, generations, seed)
    pop = np.asarray(result.population)
    energies = np.asarray(result.population_energies)
    order = np.argsort(energies, kind="stable")[:n_validated]
    chosen = [space.apply(base, pop[k]) for k in order]
    chosen, fit_s, held_s, held_p, held_v = _continuous_scores(chosen, stimuli, objective, windows_by_stimulus,
                                                               step_factor)
    best = int(np.argmax(held_s))
    candidates = [
        {
            "segmented_fit_score": float(-energies[k]),
            "fit_score": float(fit_s[j]),
            "held_out_score": float(held_s[j]),
            "held_out_performance": float(held_p[j]),
            "latency_ms": chosen[j].latency_ms,
            **{n: float(v) for n, v in zip(space.names, pop[k])},
        }
        for j, k in enumerate(order)
    ]
    return Stage2Result(
        params=chosen[best],
        fit_score=float(fit_s[best]),
        held_out_score=float(held_s[best]),
        held_out_performance=float(held_p[best]),
        segmented_fit_score=float(-energies[order[best]]),
        scoring=objective.scoring.describe(),
        candidates=candidates,
        log=objective.log,
        de_message=str(result.message),
        n_evaluations=int(result.nfev),
        held_out_per_stimulus=held_v[best].per_stimulus() if held_v[best] is not None else {},
        searched=space.names,
    )


def _differential_evolution(objective: GammaObjective, space: SearchSpace, population: int, generations: int,
                            seed: int):
    """SciPy's vectorised differential evolution of ``objective`` over ``space`` (no polishing)."""
    popsize = max(2, int(round(population / len(space.names))))
    return differential_evolution(
        objective,
        space.bounds,
        x0=np.array(space.x0),
        popsize=popsize,
        maxiter=generations,
        init="latinhypercube",
        mutation=(0.5, 1.0),
        recombination=0.7,
        tol=0.0,
        polish=False,
        vectorized=True,
        updating="deferred",
        rng=np.random.default_rng(seed),
    )


def _continuous_scores(
    chosen: Sequence[AdExParameters],
    stimuli: Sequence[TrainingStimulus],
    objective: GammaObjective,
    windows_by_stimulus: Sequence[Windows],
    step_factor: float,
) -> tuple[list[AdExParameters], np.ndarray, np.ndarray, np.ndarray, list[ValidationScore | None]]:
    """Each parameter set with its best latency, and its fit-window score, held-out score,
    held-out Gamma/R part and held-out :class:`ValidationScore`, from continuous runs over
    the whole training window, scored as the objective scores. The latency (a pure shift of
    the train) is chosen on the fit windows from :data:`LATENCY_GRID_MS`."""
    dt = stimuli[0].dt_s * step_factor
    runs = simulate_stimuli_segmented(chosen, objective.currents, dt, [w.held_out[1] for w in windows_by_stimulus],
                                      1, 0.0)
    scoring = objective.scoring
    out = np.full((3, len(chosen)), PENALTY_GAMMA)
    with_latency, held_v = list(chosen), [None] * len(chosen)
    for j in range(len(chosen)):
        if all(res.finite[j] for res in runs):
            trains = [res.spike_times_s[j] for res in runs]
            fits = [scoring.score(scoring.validation([t + lat * 1e-3 for t in trains], "fit"))
                    for lat in LATENCY_GRID_MS]
            lat = float(LATENCY_GRID_MS[int(np.argmax(fits))])
            with_latency[j] = chosen[j].with_values(latency_ms=chosen[j].latency_ms + lat)
            held = scoring.validation([t + lat * 1e-3 for t in trains], "held_out")
            out[:, j] = max(fits), scoring.score(held), held.performance
            held_v[j] = held
    return with_latency, out[0], out[1], out[2], held_v
