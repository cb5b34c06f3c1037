"""The ``adex`` model: an AdEx neuron in Brian2, fitted in two stages on the training window.

``fit`` holds out the last ``heldout_fraction`` of each training window (``train.time_split``)
from both stages, then runs these named steps:

1. Stage 1, dynamic I-V (Badel et al. 2008) on the fit part: C, g_L, E_L, Delta_T, V_T
   (:mod:`qsnmc_plugins.adex.dynamic_iv`).
2. Stage 2, the search: differential evolution on the competition's score (Gamma/R per
   stimulus minus ``count_penalty`` x the spike-count error) on the fit part: the reset's
   depth below V_T, a, b, tau_w, a V_T offset, a slow spike-triggered current (b_2, tau_w2 of
   seconds) and, for data too coarse for stage 1 to resolve spike initiation, Delta_T; a whole
   generation of all stimuli per Brian2 run (:mod:`qsnmc_plugins.adex.search`).
3. Stage 2, the choice: the last generation's best candidates re-simulated continuously, each
   given a spike latency chosen on the fit part, and scored on the held-out part; the best is
   kept (:mod:`qsnmc_plugins.adex.validate`).

Prediction simulates the whole protocol from rest (V = E_L, w = 0) up to the end of the window
to predict, continuously, so a 2009-style test warms up on the training part of the same
current and a test-only stimulus starts from rest. Fitting and prediction integrate at the same
step: ``model_step_s`` (0.2 ms, current averaged over it) for finely sampled data; data sampled more
coarsely than ``max_model_step_s`` (e.g. the 1 kHz QSNMC 2007 recordings) is integrated in substeps
of at most that length, the current held over each data sample.

Budget: ``round(generations_at_budget_1 * budget)`` generations (at least 1) of
``min(100, max(20, 200 * budget))`` candidates (fit times in ``benchmarks/README.md``).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from qsnmc import (CountPenalty, Model, SearchProgress, Stimulus, TrainingData, best_candidate, candidates_record,
                   clip_to_window, curve, fit_record, held_out_record, settings_record)
from qsnmc_plugins.adex.parameters import AdExParameters
from qsnmc_plugins.adex.settings import AdExSettings

if TYPE_CHECKING:  # Brian2 is imported only when a model fits or predicts
    from qsnmc_plugins.adex.dynamic_iv import DynamicIV
    from qsnmc_plugins.adex.search import GammaObjective, SearchResult, Windows
    from qsnmc_plugins.adex.validate import Validated


def step_factor(dt_s: float, settings: AdExSettings) -> float:
    """Recording steps per simulation step: an integer >= 1 (the current averaged over it),
    or ``1 / n`` for data coarser than ``max_model_step_s`` (n substeps per sample)."""
    if dt_s > settings.max_model_step_s * (1 + 1e-9):
        return 1.0 / int(np.ceil(dt_s / settings.max_model_step_s - 1e-9))
    return max(1, int(round(settings.model_step_s / dt_s)))


def segments_per_stimulus(n_stimuli: int, settings: AdExSettings) -> int:
    """Segments each stimulus is cut into during the search: about ``n_segments`` columns in all."""
    return max(1, int(round(settings.n_segments / max(1, n_stimuli))))


class AdExModel(Model):
    """Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005), Brian2/Cython."""

    name = "adex"
    description = ("AdEx neuron (Brian2) with a slow spike-triggered current: dynamic I-V fit, then "
                   "differential evolution on the competition's score")
    Settings = AdExSettings
    variant = "no refit: the searched model predicts"
    typical_fit_s = 50  # s at budget 1, one core, on the embedded cell: orders a run's jobs
    param_grid = {"count_penalty": [0.0, 0.1, 0.3]}

    def __init__(self, seed: int = 0, budget: float = 1.0, **overrides: Any) -> None:
        super().__init__(seed, budget, **overrides)
        self.params: AdExParameters | None = None

    @property
    def generations(self) -> int:
        """DE generations after the initial population."""
        return max(1, int(round(self.settings.generations_at_budget_1 * self.budget)))

    @property
    def population(self) -> int:
        """Candidates per generation."""
        n = self.settings.population_at_budget_1
        return int(min(n, max(20, round(2 * n * self.budget))))

    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Both stages on the fit part of each training window, the choice on the held-out part;
        returns the fit record."""
        from qsnmc_plugins.adex.brian_setup import brian2_module
        from qsnmc_plugins.adex.dynamic_iv import fit_dynamic_iv
        from qsnmc_plugins.adex.search import Windows
        from qsnmc_plugins.adex.validate import validate

        t_start = time.perf_counter()
        s = self.settings
        brian2_module().seed(self.seed)
        fold = train.time_split(s.heldout_fraction)
        windows = [Windows(f.window_s, h.stimulus.window_s) for f, h in zip(fold.fit.stimuli, fold.heldout)]
        div = fit_dynamic_iv(train.stimuli, s, stop_s=[w.fit[1] for w in windows])
        base = AdExParameters(C_pF=div.C_pF, gL_nS=div.gL_nS, EL_mV=div.EL_mV, DeltaT_mV=div.DeltaT_mV,
                              VT_mV=div.VT_mV, Vpeak_mV=s.vpeak_mV)
        t_stage1 = time.perf_counter() - t_start
        objective, found = self._search(train, base, windows, div)
        validated = validate(found, objective, s.latency_grid_ms)
        chosen = best_candidate([v.candidate for v in validated])
        best = next(v for v in validated if v.candidate is chosen)
        self.params = best.params
        seconds = {"stage1": t_stage1, "total": time.perf_counter() - t_start}
        return self._fit_record(train, fold.label, windows, div, objective, found, validated, best, seconds)

    def _search(self, train: TrainingData, base: AdExParameters, windows: list[Windows], div: DynamicIV
                ) -> tuple[GammaObjective, SearchResult]:
        """Stage 2's differential evolution around the stage-1 parameters: (objective, search result)."""
        from qsnmc_plugins.adex.search import GammaObjective, SearchSpace, StimulusScoring, search

        s = self.settings
        b_guess, tauw_guess = div.adaptation_guess
        space = SearchSpace.around(base, s, b_guess, tauw_guess, train.dt_s > s.coarse_dt_s, div.slow_adaptation_guess)
        scoring = StimulusScoring(train.stimuli, windows, train.delta_s,
                                  CountPenalty(s.count_penalty, s.count_error_stimuli))
        with SearchProgress(self.generations + 1, "adex DE") as progress:
            objective = GammaObjective(train.stimuli, base, space, scoring,
                                       segments_per_stimulus(len(train.stimuli), s),
                                       warmup_s=2.0 * space.max_tauw_ms * 1e-3,
                                       step_factor=step_factor(train.dt_s, s), on_generation=progress.step)
            found = search(objective, self.population, self.generations, self.seed, s.n_validated)
        return objective, found

    def _fit_record(self, train: TrainingData, split: str, windows: list[Windows], div: DynamicIV,
                    objective: GammaObjective, found: SearchResult, validated: list[Validated], best: Validated,
                    seconds: dict[str, float]) -> dict[str, Any]:
        """The one fit-record schema: parameters, the held-out score that chose them, the validated
        candidates, the search's curves and both stages' details."""
        from qsnmc_plugins.adex.brian_setup import current_target

        log, label = found.log, "generation (0 = initial population)"
        gens = list(range(len(log.best_score)))
        return fit_record(
            settings=settings_record(self.settings),
            fitted=self.params.as_dict(),
            held_out=held_out_record(best.candidate.score, split) if best.candidate.score is not None else None,
            candidates=candidates_record([v.candidate for v in validated]),
            curves={"best_score_per_generation": curve(gens, log.best_score, label, "best fit-window score"),
                    "mean_score_per_generation": curve(gens, log.mean_score, label, "mean fit-window score")},
            details={
                "objective": "Gamma/R per stimulus (R >= 0.3 in the window), equal weights, minus count_penalty x "
                             "mean |log count ratio|; candidates chosen on the held-out part by the same score",
                "stage1_dynamic_iv": div.as_record(),
                "searched": list(found.space.names) + ["latency_ms (grid, on the fit windows)"],
                "generations": self.generations, "population": self.population,
                "n_evaluations": found.n_evaluations, "optimizer_message": found.message,
                "n_segments_per_stimulus": segments_per_stimulus(len(train.stimuli), self.settings),
                "integration_step_s": train.dt_s * step_factor(train.dt_s, self.settings),
                "blown_up_per_generation": log.n_blown_up, "seconds_per_generation": log.seconds,
                "windows_s": [{"fit": list(w.fit), "held_out": list(w.held_out)} for w in windows],
                "scoring": objective.scoring.describe(),
                "training_score": best.fit_score,
                "training_score_segmented": best.candidate.extra["segmented_fit_score"],
                "held_out_score": best.candidate.objective,
                "brian2_target": current_target(), "seconds": seconds, "budget": self.budget, "seed": self.seed,
            })

    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) inside ``stimulus.window_s``, simulating the protocol from rest."""
        from qsnmc_plugins.adex.simulate import coarsen_current, simulate_population

        stop = stimulus.window_s[1]
        k = step_factor(stimulus.dt_s, self.settings)
        res = simulate_population([self.params], coarsen_current(stimulus.current_pA, k), stimulus.dt_s * k, stop)
        if not res.finite[0]:
            raise RuntimeError("adex: the fitted model's simulation is not finite on this stimulus")
        return clip_to_window(res.spike_times_s[0], stimulus.window_s)
