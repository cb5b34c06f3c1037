"""The DDF's search: structures x k-means seeds x ridge penalties, each scored on held-out data.

The search returns its candidates (:class:`qsnmc.Candidate`, objective: the held-out free
run's Gamma/R) and the best map without touching the model; the model then refits it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qsnmc import Candidate, Fold, TrainingData, ValidationScore, bar, best_candidate
from qsnmc_plugins.ddf.features import EmbeddingConfig, Standardiser
from qsnmc_plugins.ddf.fitting import FittedMap, HeldOutPart, Structure, fit_candidate, validate
from qsnmc_plugins.ddf.series import Series
from qsnmc_plugins.ddf.settings import DDFSettings


@dataclass(frozen=True)
class SearchPlan:
    """What a budget allows: the structures tried, repetitions per stimulus, k-means seeds per structure."""

    structures: list[Structure]
    n_repetitions: int
    n_seeds: int


@dataclass(frozen=True)
class ValidatedMap:
    """A trial of the search: a structure's map (one weight vector per penalty) and one penalty's score."""

    choice: dict[str, Any]  #: the structure, k-means seed and penalty, as JSON
    structure: Structure
    fitted: FittedMap
    penalty_index: int
    score: ValidationScore | None  #: held-out score, per stimulus (None: nothing scored)
    objective: float  #: held-out Gamma/R (NaN: nothing scored)


def structure(entry: Any, settings: DDFSettings) -> Structure:
    """A structure of ``settings.structures``: ``[dimension, delay, input lag, slow taus (ms), centres, width]``."""
    dimension, tau, lag, slow_taus_ms, n_centres, width = entry
    embedding = EmbeddingConfig(int(dimension), int(tau), tuple(float(t) for t in slow_taus_ms), settings.slow_gain,
                                settings.linear_state, int(lag))
    return Structure(embedding, int(n_centres), float(width), settings.spike_centre_share)


def plan_search(train: TrainingData, settings: DDFSettings, budget: float) -> SearchPlan:
    """The structures (the first ``n_structures``, or the budget's share), repetitions and seeds of a budget."""
    grid = settings.structures
    n = settings.n_structures or max(1, min(len(grid), int(round(len(grid) * budget))))
    max_reps = max(s.n_repetitions for s in train.stimuli)
    n_reps = max_reps if budget >= 0.5 else max(1, min(max_reps, int(np.ceil(2 * max_reps * budget))))
    n_seeds = max(2, min(settings.n_seeds, int(round(settings.n_seeds * budget))))
    return SearchPlan([structure(e, settings) for e in grid[:n]], n_reps, n_seeds)


def held_out_parts(train: TrainingData, series: list[Series], settings: DDFSettings,
                   budget: float) -> tuple[Fold, list[HeldOutPart]]:
    """The held-out end of every training window: ``heldout_fraction`` of the longest window, at most
    ``max_heldout_s`` x budget (at least a quarter of it), cut by ``TrainingData.time_split``."""
    longest_s = max(s.window_s[1] - s.window_s[0] for s in train.stimuli)
    fraction = min(settings.heldout_fraction, settings.max_heldout_s * max(budget, 0.25) / longest_s)
    fold = train.time_split(fraction)
    parts = []
    for fit, held in zip(fold.fit.stimuli, fold.heldout):
        step = next(s.step for s in series if s.stimulus == held.name)
        parts.append(HeldOutPart(held.name, fit.voltage_mV.shape[1] // step, held.stimulus.window_s,
                                 held.spike_times_s))
    return fold, parts


def search_maps(plan: SearchPlan, series: list[Series], parts: list[HeldOutPart], std: Standardiser,
                delta_s: float, settings: DDFSettings, seed: int) -> tuple[ValidatedMap, list[Candidate]]:
    """Fit every structure with each k-means seed on the fit part, score every ridge penalty by the
    held-out free run's Gamma/R; return the best trial and every trial as a candidate.

    When no trial scores, the last map fitted, with its strongest penalty, is returned (objective NaN).
    """
    stops = [next(p.start for p in parts if p.name == s.stimulus) for s in series]
    dt, penalties = series[0].dt_s, np.asarray(settings.ridge_penalties, dtype=np.float64)
    trials: list[ValidatedMap] = []
    candidates: list[Candidate] = []
    with bar(len(plan.structures) * plan.n_seeds, desc="ddf candidates") as progress:
        for k, struct in enumerate(plan.structures):
            for r in range(plan.n_seeds):
                centre_seed = seed + 1000 * r + k
                fitted = fit_candidate(series, stops, struct, penalties, dt, centre_seed, settings)
                val = validate(fitted, series, parts, std, delta_s)
                for j, pen in enumerate(penalties):
                    choice = {**struct.to_record(dt), "centre_seed": centre_seed, "ridge_penalty": float(pen)}
                    objective = float(val["gamma_over_r"][j])
                    trials.append(ValidatedMap(choice, struct, fitted, j, val["scores"][j], objective))
                    candidates.append(Candidate(choice, val["scores"][j], objective, _trial_extra(val, j, fitted)))
                progress.update(1)
    if not any(np.isfinite(c.objective) for c in candidates):
        last = trials[-1]
        return ValidatedMap(last.choice, last.structure, last.fitted, len(penalties) - 1, None, float("nan")), \
            candidates
    best = best_candidate(candidates)
    return next(t for t, c in zip(trials, candidates) if c is best), candidates


def _trial_extra(val: dict, j: int, fitted: FittedMap) -> dict[str, Any]:
    """What else a trial's free run showed (for the fit record)."""
    return {"heldout_gamma": float(val["gamma"][j]), "heldout_rate_hz": float(val["rate_hz"][j]),
            "runaway_steps": int(val["runaway_steps"][j]), "one_step_mse": float(fitted.train_mse[j])}
