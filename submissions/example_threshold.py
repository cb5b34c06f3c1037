"""example-threshold: a complete qsnmc submission in one file (``qsnmc new NAME`` copies it).

Run it:     qsnmc run example-threshold       (fit on the training window, predict and score the test)
Sweep it:   qsnmc sweep example-threshold     (param_grid scored on held-out training data)
Report:     qsnmc report                      (raster, Gamma/R with error bars, ...)

The harness imports this file in an isolated worker and builds
``ExampleThreshold(seed=..., budget=..., **overrides)``. Its structure is every built-in's:

1. Settings: one small frozen dataclass of ``qsnmc.setting`` fields (default, reason with units),
   set as ``Settings``; the base class checks overrides (``--param``) and keeps ``self.settings``.
2. ``fit(train)`` as named steps: a search that scores candidates on a held-out part of the
   training data (``train.time_split``, never the test window) and returns them without touching
   the model; the best one refit on the whole training window; one fit record (``qsnmc.fit_record``).
3. ``predict(stimulus)``: spike times (s) inside ``stimulus.window_s``, strictly increasing.
4. The ``qsnmc_register_models`` hook.

The model: the injected current, low-pass filtered with time constant tau, spikes when it rises
through a threshold (a percentile level of the filtered training current), then stays silent for
a dead time. A random search (its draws seeded by ``seed``, its size scaled by ``budget``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import qsnmc


@dataclass(frozen=True)
class ThresholdSettings:
    n_candidates: int = qsnmc.setting(60, "random-search candidates at budget 1", min=1)
    tau_range_s: tuple[float, float] = qsnmc.setting((0.002, 0.05), "low-pass time constants, log-uniform (s)")
    dead_time_range_s: tuple[float, float] = qsnmc.setting((0.002, 0.05), "dead times, log-uniform (s)")
    level_range: tuple[float, float] = qsnmc.setting((90.0, 99.9), "threshold: percentile of the filtered current")
    heldout_fraction: float = qsnmc.setting(0.25, "last part of each training window that scores the search",
                                            min=0.05, max=0.5)


def filtered(stim: qsnmc.TrainingStimulus, tau_s: float) -> np.ndarray:
    """The current low-pass filtered with ``tau_s`` (pA), inside the training window."""
    return qsnmc.lowpass(stim.current_pA, stim.dt_s, tau_s)[stim.window_slice]


def spikes(stim: qsnmc.Stimulus, tau_s: float, dead_s: float, theta_pA: float) -> np.ndarray:
    """Upward crossings (s) of the filtered current through ``theta_pA``, at most one per dead time."""
    x = qsnmc.lowpass(stim.current_pA, stim.dt_s, tau_s)
    kept: list[float] = []
    for t in (np.flatnonzero((x[:-1] < theta_pA) & (x[1:] >= theta_pA)) + 1) * stim.dt_s:
        if not kept or t - kept[-1] >= dead_s:
            kept.append(float(t))
    return qsnmc.clip_to_window(np.asarray(kept), stim.window_s)


def search(fold: qsnmc.Fold, settings: ThresholdSettings, n: int, seed: int) -> list[qsnmc.Candidate]:
    """``n`` random (tau, dead time, level) candidates, each scored on the held-out part of ``fold``."""
    rng = np.random.default_rng(seed)
    candidates = []
    for _ in range(n):
        tau_s = float(np.exp(rng.uniform(*np.log(settings.tau_range_s))))
        dead_s = float(np.exp(rng.uniform(*np.log(settings.dead_time_range_s))))
        level = float(rng.uniform(*settings.level_range))
        theta = np.percentile(np.concatenate([filtered(s, tau_s) for s in fold.fit.stimuli]), level)
        predictions = {h.name: spikes(h.stimulus, tau_s, dead_s, theta) for h in fold.heldout}
        score = qsnmc.score_heldout(predictions, fold.heldout, fold.fit.delta_s)
        choice = {"tau_s": tau_s, "dead_time_s": dead_s, "level": level}
        candidates.append(qsnmc.Candidate(choice, score, score.performance))
    return candidates


class ExampleThreshold(qsnmc.Model):
    name = "example-threshold"  # unique; shown in the table
    description = "example submission: threshold on the low-pass filtered current"
    Settings = ThresholdSettings
    variant = "refit"  # the chosen candidate refit on the whole training window
    typical_fit_s = 3  # s at budget 1, one core, on the embedded cell: orders a run's jobs
    param_grid = {"n_candidates": [30, 60, 120]}  # what `qsnmc sweep` tries

    def fit(self, train: qsnmc.TrainingData) -> dict:
        # 1. search on a held-out part: fit on the first 75 % of each training window, score the rest
        fold = train.time_split(self.settings.heldout_fraction)
        n = max(1, round(self.settings.n_candidates * self.budget))
        candidates = search(fold, self.settings, n, self.seed)
        best = qsnmc.best_candidate(candidates)
        # 2. refit the chosen candidate on the whole training window
        self.tau_s, self.dead_s = best.choice["tau_s"], best.choice["dead_time_s"]
        x = np.concatenate([filtered(s, self.tau_s) for s in train.stimuli])
        self.theta_pA = float(np.percentile(x, best.choice["level"]))
        # 3. one fit record
        return qsnmc.fit_record(
            settings=qsnmc.settings_record(self.settings),
            fitted={"tau_ms": 1e3 * self.tau_s, "dead_time_ms": 1e3 * self.dead_s, "threshold_pA": self.theta_pA},
            held_out=qsnmc.held_out_record(best.score, fold.label),
            candidates=qsnmc.candidates_record(candidates))

    def predict(self, stimulus: qsnmc.Stimulus) -> np.ndarray:
        return spikes(stimulus, self.tau_s, self.dead_s, self.theta_pA)


@qsnmc.hookimpl
def qsnmc_register_models() -> list:
    return [ExampleThreshold]
