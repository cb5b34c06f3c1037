"""The ``adex`` model: an AdEx neuron in Brian2, fitted in two stages on the training window.

1. Dynamic I-V (Badel et al. 2008) on the fit part of the training window: C, g_L,
   E_L, Delta_T, V_T (:mod:`qsnmc_plugins.adex.dynamic_iv`).
2. Differential evolution on the competition's score (Gamma/R per stimulus, minus
   ``count_penalty`` x the spike-count error): the reset's depth below V_T, a, b, tau_w,
   a V_T offset, a slow spike-triggered current (b_2, tau_w2 of seconds) and, for data
   too coarse for stage 1 to resolve spike initiation, Delta_T; a whole generation of all
   stimuli per Brian2 run. The top candidates get a spike latency (a shift chosen on the
   fit windows) and are validated on the held-out last 20 % of each training window
   (:mod:`qsnmc_plugins.adex.gamma_fit`).

Prediction simulates the whole protocol from rest (V = E_L, w = 0) up to the end
of the window to predict, continuously, so a 2009-style test warms up on the
training part of the same current and a test-only stimulus starts from rest.
Fitting and prediction integrate at the same step: :data:`SIM_DT_S` (0.2 ms, current
averaged over it) for finely sampled data; data sampled more coarsely than
:data:`MAX_SIM_DT_S` (e.g. the 1 kHz QSNMC 2007 recordings) is integrated in
substeps of at most that length, the current held over each data sample.

Budget: ``round(36 * budget)`` generations (at least 1) of ``min(100, max(20,
200 * budget))`` candidates (fit times in ``benchmarks/README.md``).
"""
from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from qsnmc import Stimulus, TrainingData
from qsnmc import Model
from qsnmc import bar
from qsnmc_plugins.adex.parameters import AdExParameters

if TYPE_CHECKING:  # Brian2 is imported only when a model fits or predicts
    from qsnmc_plugins.adex.gamma_fit import Stage2Result

#: fraction of each training window held out from both fitting stages
HELD_OUT_FRACTION = 0.2
#: DE generations (after the initial population) at budget 1
GENERATIONS_AT_BUDGET_1 = 36
#: candidates per generation at budget 1
POPULATION_AT_BUDGET_1 = 100
#: (stimulus, segment) columns simulated side by side during the search
N_SEGMENTS = 10
#: default weight of the spike-count error in the stage-2 score (chosen on held-out training data,
#: benchmarks/README.md, "AdEx: refitted for many stimuli"); a sweep setting
COUNT_PENALTY = 0.1
#: the voltage at which a spike is emitted (mV): the harness detects spikes at 0 mV
VPEAK_MV = 0.0
#: integration step (s), for fitting and prediction alike (the current is averaged over it);
#: 0.2 ms halves Brian2's per-step cost, and moves spikes by < 0.2 ms against a 4 ms window
SIM_DT_S = 2e-4
#: longest integration step (s): coarser data is integrated in substeps of at most this.
#: Forward Euler at 1 ms (one 1 kHz sample) misplaces the exponential upswing (Delta_T ~ 1-2 mV)
#: by a whole step against a 2 ms coincidence window; 0.25 ms keeps 4 substeps per sample.
MAX_SIM_DT_S = 2.5e-4


def step_factor(dt_s: float) -> float:
    """Recording steps per simulation step: an integer >= 1 (the current averaged over it),
    or ``1 / n`` for data coarser than :data:`MAX_SIM_DT_S` (n substeps per sample)."""
    if dt_s > MAX_SIM_DT_S * (1 + 1e-9):
        return 1.0 / int(np.ceil(dt_s / MAX_SIM_DT_S - 1e-9))
    return max(1, int(round(SIM_DT_S / dt_s)))


def segments_per_stimulus(n_stimuli: int) -> int:
    """Segments each stimulus is cut into during the search: about :data:`N_SEGMENTS` columns in all."""
    return max(1, int(round(N_SEGMENTS / max(1, n_stimuli))))


def _show_generation(progress, best: float) -> None:
    """Advance the fit's progress bar by one DE generation, showing the best score so far."""
    progress.update(1)
    progress.set_postfix(best_score=f"{best:.3f}")


class AdExModel(Model):
    """Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005), Brian2/Cython."""

    name = "adex"
    description = ("AdEx neuron (Brian2) with a slow spike-triggered current: dynamic I-V fit, then "
                   "differential evolution on the competition's score")

    param_grid = {"count_penalty": [0.0, 0.1, 0.3]}

    def __init__(self, seed: int = 0, budget: float = 1.0, count_penalty: float = COUNT_PENALTY) -> None:
        super().__init__(seed=seed, budget=budget)
        self.count_penalty = float(count_penalty)
        self.params: AdExParameters | None = None

    # -- settings derived from the budget ------------------------------------------------
    @property
    def generations(self) -> int:
        return max(1, int(round(GENERATIONS_AT_BUDGET_1 * self.budget)))

    @property
    def population(self) -> int:
        return int(min(POPULATION_AT_BUDGET_1, max(20, round(2 * POPULATION_AT_BUDGET_1 * self.budget))))

    # -- fitting -------------------------------------------------------------------------
    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Fit on the training windows only; returns the fit record (parameters with units)."""
        from qsnmc_plugins.adex.brian_setup import brian2_module
        from qsnmc_plugins.adex.dynamic_iv import fit_dynamic_iv
        from qsnmc_plugins.adex.gamma_fit import Windows

        t_start = time.perf_counter()
        brian2_module().seed(self.seed)
        stimuli = list(train.stimuli)
        windows = [Windows.split(s.window_s, HELD_OUT_FRACTION) for s in stimuli]
        # Stage 1: each stimulus' fit part only (the held-out part stays unseen).
        div = fit_dynamic_iv(stimuli, stop_s=[w.fit[1] for w in windows])
        base = AdExParameters(
            C_pF=div.C_pF, gL_nS=div.gL_nS, EL_mV=div.EL_mV, DeltaT_mV=div.DeltaT_mV, VT_mV=div.VT_mV,
            Vpeak_mV=VPEAK_MV,
        )
        t_stage1 = time.perf_counter() - t_start
        st2 = self._search_stage2(train, base, windows, div)
        self.params = st2.params
        return {
            **self._fit_record(train, windows, div, st2),
            "seconds": {"stage1": t_stage1, "total": time.perf_counter() - t_start},
            "budget": self.budget,
            "seed": self.seed,
        }

    def _search_stage2(self, train: TrainingData, base: AdExParameters, windows: list, div: Any) -> Stage2Result:
        """Stage 2: differential evolution on Gamma around the stage-1 parameters, with a progress bar."""
        from qsnmc_plugins.adex.dynamic_iv import COARSE_DT_S
        from qsnmc_plugins.adex.gamma_fit import fit_stage2

        adaptation_guess = div.adaptation_guess
        progress = bar(total=self.generations + 1, desc="adex DE")
        try:
            return fit_stage2(
                list(train.stimuli), base, windows, train.delta_s,
                generations=self.generations, population=self.population,
                n_segments=segments_per_stimulus(len(train.stimuli)),
                seed=self.seed, on_generation=partial(_show_generation, progress),
                step_factor=step_factor(train.dt_s),
                b_guess_pA=adaptation_guess[0], tauw_guess_ms=adaptation_guess[1],
                b2_guess_pA=div.slow_adaptation_guess, search_delta_t=train.dt_s > COARSE_DT_S,
                count_penalty=self.count_penalty,
            )
        finally:
            progress.close()

    def _fit_record(self, train: TrainingData, windows: list, div: Any, st2: Stage2Result) -> dict[str, Any]:
        """Both stages' results, the windows and the training / held-out Gamma and reliability."""
        from qsnmc_plugins.adex.brian_setup import current_target

        return {
            "parameters": self.params.as_record(),
            "stage1_dynamic_iv": div.as_record(),
            "stage2": {
                "searched": list(st2.searched) + ["latency_ms (grid, on the fit windows)"],
                "generations": self.generations,
                "population": self.population,
                "n_evaluations": st2.n_evaluations,
                "n_segments_per_stimulus": segments_per_stimulus(len(train.stimuli)),
                "integration_step_s": train.dt_s * step_factor(train.dt_s),
                "best_score_per_generation": st2.log.best_score,
                "mean_score_per_generation": st2.log.mean_score,
                "blown_up_per_generation": st2.log.n_blown_up,
                "seconds_per_generation": st2.log.seconds,
                "validated_candidates": st2.candidates,
                "optimizer_message": st2.de_message,
            },
            "windows_s": [{"fit": list(w.fit), "held_out": list(w.held_out)} for w in windows],
            "objective": "Gamma/R per stimulus (R >= 0.3 in the window), equal weights, minus count_penalty x "
                         "mean |log count ratio|",
            "scoring": st2.scoring,
            "training_score": st2.fit_score,
            "training_score_segmented": st2.segmented_fit_score,
            "held_out_score": st2.held_out_score,
            "held_out_performance": st2.held_out_performance,
            "held_out_per_stimulus": st2.held_out_per_stimulus,
            "brian2_target": current_target(),
        }

    # -- prediction ----------------------------------------------------------------------
    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) inside ``stimulus.window_s``, simulating the protocol from rest."""
        from qsnmc_plugins.adex.simulate import coarsen_current, simulate_population

        if self.params is None:
            raise RuntimeError("adex: predict() before fit()")
        start, stop = stimulus.window_s
        k = step_factor(stimulus.dt_s)
        res = simulate_population([self.params], coarsen_current(stimulus.current_pA, k), stimulus.dt_s * k, stop)
        if not res.finite[0]:
            raise RuntimeError("adex: the fitted model's simulation is not finite on this stimulus")
        t = res.spike_times_s[0]
        return np.asarray(t[(t >= start) & (t <= stop)], dtype=np.float64)
