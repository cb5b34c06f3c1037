"""Stage 2, the search: reset, adaptation and threshold offset by differential evolution on the score.

The spike-initiation and subthreshold parameters come from the dynamic I-V fit (stage 1);
this stage searches the reset's depth below V_T (V_r = V_T - gap, so the reset stays below
the threshold), a, b, tau_w, an offset of V_T, a slow spike-triggered current (b_2, tau_w2)
and, for coarsely sampled data, Delta_T, with SciPy's differential evolution (Storn & Price
1997) in its vectorised form: every generation is one Brian2 run of the whole population on
every stimulus (one neuron per candidate and column, each stimulus' fit window cut into
segments run side by side, :func:`qsnmc_plugins.adex.simulate.simulate_stimuli_segmented`),
scored the competition's way on the fit windows (:class:`StimulusScoring`). The held-out part of
the training window is never seen here; :mod:`qsnmc_plugins.adex.validate` scores on it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import differential_evolution

from qsnmc import (CountPenalty, TrainingStimulus, ValidationScore, clip_to_window, score_trains,
                   stretch_reliability)
from qsnmc_plugins.adex.parameters import AdExParameters
from qsnmc_plugins.adex.settings import AdExSettings
from qsnmc_plugins.adex.simulate import coarsen_current, simulate_stimuli_segmented

#: score given to a candidate whose simulation blew up (as low as an invalid prediction's Gamma)
PENALTY_GAMMA = -1.0

#: the searched coordinates, in DE-vector order (``DeltaT_mV`` only for coarsely sampled data)
SEARCH_NAMES = ("reset_gap_mV", "a_nS", "b_pA", "log10_tauw_ms", "dVT_mV", "b2_pA", "log10_tauw2_ms")


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the stage-2 search, derived from the stage-1 membrane.

    V_r = V_T - gap, gap between ``min_reset_gap_mV`` and V_T - E_L + 10 mV (the reset stays
    below the threshold); a between 0 and 2 g_L; b between 0 and g_L * 30 mV (a current that
    would hold the membrane 30 mV below rest); tau_w between 10 and 500 ms (log scale); V_T
    offset within +-6 mV; the slow current's b_2 between 0 and g_L * 5 mV, tau_w2 in
    ``tauw2_range_ms`` (log scale); with ``search_delta_t`` also Delta_T between 0.5 and 4 mV.
    """

    bounds: tuple[tuple[float, float], ...]
    x0: tuple[float, ...]
    names: tuple[str, ...] = SEARCH_NAMES

    @classmethod
    def around(
        cls, base: AdExParameters, settings: AdExSettings, b_guess_pA: float | None = None,
        tauw_guess_ms: float | None = None, search_delta_t: bool = False, b2_guess_pA: float | None = None,
    ) -> "SearchSpace":
        """Bounds around the stage-1 membrane; the starting member uses the stage-1
        spike-triggered adaptation estimates when given."""
        gap = settings.min_reset_gap_mV
        bounds = [
            (gap, max(gap + 1.0, base.VT_mV - base.EL_mV + 10.0)),
            (0.0, 2.0 * base.gL_nS),
            (0.0, 30.0 * base.gL_nS),
            (1.0, math.log10(500.0)),
            (-6.0, 6.0),
            (0.0, 5.0 * base.gL_nS),
            tuple(math.log10(x) for x in settings.tauw2_range_ms),
        ]
        x0 = [
            float(np.clip(base.VT_mV - base.EL_mV - 10.0, *bounds[0])),
            0.2 * base.gL_nS,
            4.0 * base.gL_nS if b_guess_pA is None else float(np.clip(b_guess_pA, *bounds[2])),
            2.0 if tauw_guess_ms is None else float(np.clip(math.log10(max(tauw_guess_ms, 1e-3)), *bounds[3])),
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
    """Where a stimulus' training window is used for fitting and for validation (s, protocol time)."""

    fit: tuple[float, float]
    held_out: tuple[float, float]


class StimulusScoring:
    """Candidates scored the competition's way on one window kind (``"fit"`` or ``"held_out"``) of
    every stimulus: Gamma/R per stimulus against every repetition inside the window (R computed once),
    stimuli weighted equally, those whose R is under 0.3 left out (:class:`qsnmc.ValidationScore`),
    minus ``penalty`` (:class:`qsnmc.CountPenalty`).
    """

    def __init__(self, stimuli: Sequence[TrainingStimulus], windows_by_stimulus: Sequence[Windows],
                 delta_s: float, penalty: CountPenalty) -> None:
        self.names, self.delta_s, self.penalty = [s.name for s in stimuli], delta_s, penalty
        self.windows = {kind: [getattr(w, kind) for w in windows_by_stimulus] for kind in ("fit", "held_out")}
        self.recordings = {kind: [[clip_to_window(t, win) for t in s.spike_times_s] for s, win in zip(stimuli, wins)]
                           for kind, wins in self.windows.items()}
        self.reliability = {kind: [stretch_reliability(rec, win, delta_s) for rec, win in zip(recs, self.windows[kind])]
                            for kind, recs in self.recordings.items()}

    def validation(self, trains: Sequence[np.ndarray], kind: str) -> ValidationScore:
        """One candidate's score from its train on each stimulus (s, protocol time)."""
        return ValidationScore(tuple(
            score_trains(name, rec, clip_to_window(train, win), win, self.delta_s, reliability=r)
            for name, rec, train, win, r in zip(self.names, self.recordings[kind], trains, self.windows[kind],
                                                self.reliability[kind])
        ))

    def score(self, validation: ValidationScore) -> float:
        """P minus the count penalty."""
        return self.penalty.objective(validation)

    def describe(self) -> dict[str, Any]:
        return {"count_penalty": self.penalty.weight, "count_error_stimuli": self.penalty.stimuli,
                "reliability": {kind: {n: (float(x) if np.isfinite(x) else None) for n, x in zip(self.names, r)}
                                for kind, r in self.reliability.items()}}


@dataclass
class GenerationLog:
    """What the optimiser saw: one entry per Brian2 run (a DE generation)."""

    best_score: list[float] = field(default_factory=list)
    mean_score: list[float] = field(default_factory=list)
    n_blown_up: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


class GammaObjective:
    """Vectorised DE objective: minus each candidate's fit-window score (:class:`StimulusScoring`).

    Args:
        stimuli: the training stimuli (all are fitted, in one Brian2 run per generation).
        base: the stage-1 parameters the DE vectors modify.
        space: the search space whose vectors the optimiser passes.
        scoring: the fit- and held-out-window scoring of every stimulus.
        n_segments: segments of each stimulus run side by side (see ``simulate_stimuli_segmented``).
        warmup_s: warm-up before each segment (s).
        step_factor: the simulation step is this many recording steps (``1 / n``: n substeps per sample).
        on_generation: called after each run with the best score seen so far.
    """

    def __init__(self, stimuli: Sequence[TrainingStimulus], base: AdExParameters, space: SearchSpace,
                 scoring: StimulusScoring, n_segments: int, warmup_s: float, step_factor: float = 1,
                 on_generation: Callable[[float], None] | None = None) -> None:
        self.stimuli, self.base, self.space, self.scoring = list(stimuli), base, space, scoring
        self.n_segments, self.warmup_s, self.step_factor = n_segments, warmup_s, step_factor
        self.on_generation = on_generation
        self.currents = [coarsen_current(s.current_pA, step_factor) for s in self.stimuli]
        self.log = GenerationLog()
        self.best_so_far = -np.inf

    def gammas(self, population: Sequence[AdExParameters]) -> tuple[np.ndarray, int]:
        """Fit-window score of each parameter set (:class:`StimulusScoring`) and the blow-up count."""
        dt = self.stimuli[0].dt_s * self.step_factor
        runs = simulate_stimuli_segmented(population, self.currents, dt, [w[1] for w in self.scoring.windows["fit"]],
                                          self.n_segments, self.warmup_s)
        blown = np.zeros(len(population), dtype=bool)
        for res in runs:
            blown |= ~res.finite
        scores = np.array([self.scoring.score(self.scoring.validation([r.spike_times_s[j] for r in runs], "fit"))
                           for j in range(len(population))])
        scores[blown] = PENALTY_GAMMA
        return scores, int(blown.sum())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x``: shape ``(n_coordinates, n_candidates)``; returns ``-score`` per candidate."""
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
class SearchResult:
    """The search's last generation, best first, and how it got there."""

    space: SearchSpace
    vectors: np.ndarray  #: (n, coordinates): the best ``n`` DE vectors of the last generation
    segmented_scores: np.ndarray  #: their (segmented) fit-window scores
    log: GenerationLog
    message: str  #: the optimiser's message
    n_evaluations: int


def search(objective: GammaObjective, population: int, generations: int, seed: int, n_best: int) -> SearchResult:
    """SciPy's vectorised differential evolution of ``objective`` over its space (no polishing),
    started from the space's ``x0`` and a Latin hypercube; returns the last generation's best ``n_best``.

    Args:
        population: candidates per generation (rounded to a multiple of the coordinates).
        generations: generations after the initial population (one Brian2 run each).
        seed: seeds the optimiser (the simulation itself is deterministic).
    """
    space = objective.space
    result = differential_evolution(
        objective, space.bounds, x0=np.array(space.x0), popsize=max(2, int(round(population / len(space.names)))),
        maxiter=generations, init="latinhypercube", mutation=(0.5, 1.0), recombination=0.7, tol=0.0, polish=False,
        vectorized=True, updating="deferred", rng=np.random.default_rng(seed),
    )
    energies = np.asarray(result.population_energies)
    order = np.argsort(energies, kind="stable")[:n_best]
    return SearchResult(space, np.asarray(result.population)[order], -energies[order], objective.log,
                        str(result.message), int(result.nfev))
