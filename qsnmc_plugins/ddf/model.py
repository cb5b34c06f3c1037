"""The ``ddf`` model: fit (a held-out search over candidate maps, then a refit) and prediction (free run)."""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from qsnmc import (Model, Stimulus, TrainingData, clip_to_window, fit_record, held_out_record, samples_per_step,
                   candidates_record, settings_record)
from qsnmc_plugins.ddf.embedding import suggest_embedding
from qsnmc_plugins.ddf.features import Standardiser, slow_filters
from qsnmc_plugins.ddf.fitting import FittedMap, HeldOutPart, fit_candidate, forecast_spikes, history_at, validate
from qsnmc_plugins.ddf.search import ValidatedMap, held_out_parts, plan_search, search_maps
from qsnmc_plugins.ddf.series import Series, block_centre_s, stimulus_series, window_drive
from qsnmc_plugins.ddf.settings import DDFSettings


class DDFModel(Model):
    """Data-driven forecasting (Clark, Fuller, Platt & Abarbanel 2022) of the voltage.

    ``v(n+1) = v(n) + sum_q w_q exp(-||z(n) - c_q||^2 / (2 sigma_q^2)) + u (I(n) + I(n+1))/2
    + (bias, slow-filter and delay terms)``, on a delay embedding ``z`` of the standardised
    voltage (see :mod:`qsnmc_plugins.ddf.features`). Centres by k-means (a share seeded
    from spike states), widths from the distance between centres, weights by ridge
    regression in closed form. The map steps at ``model_step_s`` (block means of the recording).

    Fit, in named steps: plan the search for the budget; hold out the end of each training
    window (``TrainingData.time_split``); search (:func:`search.search_maps`): structures,
    k-means seeds and ridge penalties, each scored by the Gamma/R of a free run over the
    held-out part; refit the chosen map's weights on the whole window (same centres), kept
    when its free run over the held-out part neither runs away nor loses more than
    ``refit_tolerance`` of Gamma/R (otherwise the validated map is kept).

    Budget: 1.0 tries every structure (5 x 3 seeds x 4 penalties) on all repetitions;
    smaller budgets try fewer structures and seeds on fewer repetitions.
    """

    name = "ddf"
    description = ("Data-driven forecasting: RBF map of a delay-embedded voltage driven by the current "
                   "(Clark et al. 2022)")
    Settings = DDFSettings
    variant = "refit"  # unless the refit free-runs worse: the record then says "no refit"
    typical_fit_s = 48  # s at budget 1, one core, on the embedded cell: orders a run's jobs

    def __init__(self, seed: int = 0, budget: float = 1.0, **overrides: Any) -> None:
        super().__init__(seed, budget, **overrides)
        self._map: FittedMap | None = None
        self._std: Standardiser | None = None
        self._warm: dict[str, Series] = {}
        self._rest: tuple[np.ndarray, np.ndarray] | None = None
        #: the last prediction's runaway report (steps clipped, first clipped time in s)
        self.last_forecast: dict[str, Any] = {}

    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Choose and fit the map on the training windows; return the fit record."""
        t_start = time.perf_counter()
        s = self.settings
        step = samples_per_step(train.dt_s, s.model_step_s)
        std = Standardiser.for_training(train)
        plan = plan_search(train, s, self.budget)
        series = [x for stim in train.stimuli for x in stimulus_series(
            stim, std, list(range(min(plan.n_repetitions, stim.n_repetitions))), step, s.spike_state_window_s)]
        fold, parts = held_out_parts(train, series, s, self.budget)
        best, candidates = search_maps(plan, series, parts, std, train.delta_s, s, self.seed)
        final, refit_score, refitted = self._refit_on_whole_window(best, series, parts, std, train.delta_s)
        self._keep_for_prediction(final, std, series)
        dt = series[0].dt_s
        details = {"model_step_ms": dt * 1e3, "samples_per_step": step, "refitted_on_whole_window": refitted,
                   "refit_heldout_gamma_over_r_in_sample": refit_score,
                   "heldout_start_s": {p.name: p.window_s[0] for p in parts},
                   "embedding_estimates": _embedding_estimates(series[0], dt),
                   "repetitions_used": plan.n_repetitions, "seeds_per_candidate": plan.n_seeds,
                   "fit_time_s": time.perf_counter() - t_start}
        fitted = {**best.choice, **_map_record(final, std)}
        held = held_out_record(best.score, fold.label) if best.score is not None else None
        return fit_record(settings=settings_record(s), fitted=fitted, held_out=held,
                          candidates=candidates_record(candidates), details=details,
                          variant=self.variant if refitted else "no refit: the searched model predicts")

    def _refit_on_whole_window(self, best: ValidatedMap, series: list[Series], parts: list[HeldOutPart],
                               std: Standardiser, delta_s: float) -> tuple[FittedMap, float, bool]:
        """The chosen map's weights (same centres and penalty) refitted on the whole training window.

        The refit is kept only if its free run over the held-out part (now in-sample, so this
        checks stability, not generalisation) does not run away and stays within
        ``refit_tolerance`` of the validated Gamma/R. Returns (the kept map, the refit's Gamma/R, refitted).
        """
        s, j, score = self.settings, best.penalty_index, best.objective
        whole = [x.n_samples for x in series]
        refit = fit_candidate(series, whole, best.structure, best.fitted.penalties[j : j + 1], series[0].dt_s, 0, s,
                              rbf=best.fitted.rbf)
        refit_val = validate(refit, series, parts, std, delta_s)
        refit_score = float(refit_val["gamma_over_r"][0])
        keep = bool(np.isfinite(score) and np.isfinite(refit_score) and refit_val["runaway_steps"][0] == 0
                    and refit_score >= score - s.refit_tolerance)
        return (refit if keep else best.fitted.select(j)), refit_score, keep

    def _keep_for_prediction(self, final: FittedMap, std: Standardiser, series: list[Series]) -> None:
        """Store the map, the standardiser, each stimulus' first recording (for warm starts) and the resting state."""
        self._map, self._std = final, std
        self._warm = {}
        for s in series:
            self._warm.setdefault(s.stimulus, s)
        self._rest = self._resting_state(np.median(np.concatenate([s.v for s in series])), series[0].dt_s)

    def _resting_state(self, v0: float, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """History and slow state after relaxing from ``v0`` with zero current."""
        fm = self._map
        cfg = fm.structure.embedding
        hist = np.full(cfg.span + 1, v0)
        slow0 = np.full(fm.slow_alphas.size, v0)
        n = int(self.settings.rest_relaxation_s / dt_s)
        res = fm.run(np.zeros((n, 2)), hist, slow0)
        v = np.concatenate([hist, res.v[0]])
        # started at v0 = v[0], as the steady state the filters start from
        slow = slow_filters(v, dt_s, cfg.slow_taus_ms)[-1 - cfg.input_lag] if cfg.slow_taus_ms else np.zeros(0)
        return v[-(cfg.span + 1) :], slow

    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) in ``stimulus.window_s`` from a free run of the fitted map.

        A stimulus seen in training starts from the first repetition's recorded voltage
        at the start of the window (or the end of the training window, whichever is
        earlier); any other starts from the map's resting state at protocol time 0.
        """
        if self._map is None or self._std is None or self._rest is None:
            raise RuntimeError("fit the model before predicting")
        fm, std = self._map, self._std
        dt = stimulus.dt_s
        step = samples_per_step(dt, self.settings.model_step_s)
        a = int(round(stimulus.window_s[0] / dt))
        b = min(int(round(stimulus.window_s[1] / dt)), stimulus.current_pA.size)
        k0, (hist, slow) = self._warm_start(stimulus.name, dt, step, a)
        n_steps = max(1, -(-(b - k0) // step))
        res = fm.run(window_drive(stimulus.current_pA, k0, n_steps, std, step), hist, slow)
        v = np.concatenate([[hist[-1]], res.v[0]])
        spikes = forecast_spikes(v, std, dt * step, block_centre_s(k0, step, dt))[0]
        first_s = float(k0 * dt + (1 + res.first_runaway_step[0]) * dt * step) if res.ran_away[0] else None
        self.last_forecast = {"stimulus": stimulus.name, "warm_start_s": k0 * dt,
                              "runaway_steps": int(res.runaway_steps[0]), "first_runaway_s": first_s}
        if res.ran_away[0]:
            warnings.warn(f"ddf: the forecast of {stimulus.name!r} left the training voltage range on "
                          f"{res.runaway_steps[0]} steps (first at {first_s:.4f} s); clipped",
                          RuntimeWarning, stacklevel=2)
        return clip_to_window(spikes, stimulus.window_s)

    def _warm_start(self, name: str, dt: float, step: int, a: int) -> tuple[int, tuple[np.ndarray, np.ndarray]]:
        """The protocol sample where the free run's first (known) map step starts, and its history and
        slow state: the recording's at window sample ``a`` for a stimulus seen in training, else rest."""
        rec, span = self._warm.get(name), self._map.structure.embedding.span
        if rec is not None and abs(rec.fine_dt_s - dt) < 1e-12 and rec.step == step:
            k = min((a - rec.start_sample) // step, rec.n_samples - 1)
            if k >= span:
                return rec.start_sample + k * step, history_at(rec, k, self._map)
        return 0, self._rest


def _embedding_estimates(first: Series, dt: float) -> dict[str, Any]:
    """The classical embedding estimates (AMI delay, FNN dimension) on the first 10 s of a series.

    For the record only: on a noisy voltage they are not the best forecasting embedding, which
    is chosen by the held-out free run instead.
    """
    sugg = suggest_embedding(first.v[: min(first.n_samples, int(10.0 / dt))], max_lag=100, max_dimension=8)
    return {"ami_first_minimum_tau_samples": sugg["tau"], "fnn_dimension": sugg["dimension"],
            "fnn_fraction": sugg["fnn"]}


def _map_record(final: FittedMap, std: Standardiser) -> dict[str, Any]:
    """The kept map's weights in physical units, its size and one-step error, for the fit record."""
    w = final.weights[0]
    nc = final.rbf.n_centres
    return {
        "standardiser_v_mean_mV": std.v_mean_mV, "standardiser_v_sd_mV": std.v_sd_mV,
        "standardiser_i_sd_pA": std.i_sd_pA,
        "current_gain_mV_per_step_per_pA": [float(g) * std.v_sd_mV / std.i_sd_pA for g in w[nc + 1 : nc + 3]],
        "bias_mV_per_step": float(w[nc]) * std.v_sd_mV,
        "rbf_weight_rms_mV_per_step": float(np.sqrt(np.mean(w[:nc] ** 2))) * std.v_sd_mV,
        "n_centres_used": nc,
        "regression_rows": final.n_rows,
        "one_step_rmse_mV": float(np.sqrt(final.train_mse[0])) * std.v_sd_mV,
    }
