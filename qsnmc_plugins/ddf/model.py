"""The ``ddf`` model: fit (validation of candidate maps) and prediction (free run)."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qsnmc import Stimulus, TrainingData, ValidationScore
from qsnmc import Model
from qsnmc import bar
from qsnmc_plugins.ddf.embedding import suggest_embedding
from qsnmc_plugins.ddf.features import EmbeddingConfig, Standardiser, slow_filters
from qsnmc_plugins.ddf.fitting import Candidate, FittedMap, fit_candidate, forecast_spikes, history_at, validate
from qsnmc_plugins.ddf.series import Series, block_centre_s, coarse_step, standardiser_for, stimulus_series, window_drive

if TYPE_CHECKING:  # torch is imported only when a refinement runs
    from qsnmc_plugins.ddf.refine import RefineSettings

#: candidate structures, best guess first (a budget-limited fit tries only the first few):
#: (dimension, delay in map steps, input lag in map steps, slow filter time constants in
#: ms, number of centres, width factor); slow filters enter linearly. Their held-out scores
#: on the embedded challenge are in benchmarks/README.md
CANDIDATE_GRID: tuple[tuple[int, int, int, tuple[float, ...], int, float], ...] = (
    (4, 1, 0, (200.0,), 100, 1.0),
    (3, 1, 0, (200.0,), 100, 1.0),
    (5, 1, 0, (200.0,), 150, 1.0),
    (4, 1, 1, (200.0,), 100, 1.0),
    (4, 2, 0, (50.0, 300.0), 100, 1.0),
)
#: relative ridge penalties tried for every candidate (one free run validates all of them)
PENALTIES = np.array([1e-6, 1e-5, 1e-4, 1e-3])
#: time the map relaxes with zero current to find its resting state (s)
REST_RELAXATION_S = 0.5


@dataclass(frozen=True)
class ValidatedMap:
    """The best trial of the validation: a fitted candidate, its penalty and held-out score."""

    heldout_gamma_over_r: float  #: Gamma/R of the free run over the held-out part (NaN: nothing scored)
    candidate: Candidate
    penalty_index: int  #: index into :data:`PENALTIES`
    fitted: FittedMap  #: the candidate's map, one weight vector per penalty
    centre_seed: int  #: the k-means seed of its centres
    heldout: ValidationScore | None = None  #: its held-out score, per stimulus


class DDFModel(Model):
    """Data-driven forecasting (Clark, Fuller, Platt & Abarbanel 2022) of the voltage.

    ``v(n+1) = v(n) + sum_q w_q exp(-||z(n) - c_q||^2 / (2 sigma_q^2)) + u (I(n) + I(n+1))/2
    + (bias, slow-filter and delay terms)``, on a delay embedding ``z`` of the standardised
    voltage (see :mod:`qsnmc_plugins.ddf.features`). Centres by k-means (a share seeded
    from spike states), widths from the distance between centres, weights by ridge
    regression in closed form. The map steps at :attr:`map_step_s` (block means of the
    recording). Candidate structures, k-means seeds and ridge penalties are chosen by
    the coincidence factor of a free run over the held-out end of the training window;
    the chosen map's weights are then refitted on the whole window (same centres) when
    the refit's free run over the held-out part neither runs away nor loses more than
    :attr:`refit_tolerance` of Gamma/R (otherwise the validated map is kept). Optionally
    (:attr:`refine`, off by default) the chosen map is first refined by gradient descent on
    multi-step free runs and kept if that raises the held-out Gamma/R.

    Budget: 1.0 tries :data:`CANDIDATE_GRID` (5 structures x 3 seeds x 4 penalties) on all
    repetitions; smaller budgets try fewer structures and seeds on fewer repetitions.
    """

    name = "ddf"
    description = "Data-driven forecasting: RBF map of a delay-embedded voltage driven by the current (Clark et al. 2022)"

    #: fraction of each training window held out to choose the structure
    holdout_fraction: float = 0.2
    #: longest held-out part at budget 1 (s); scaled by the budget, by a quarter at the least
    max_holdout_s: float = 6.0
    #: take every ``row_stride``-th sample (plus every spike state) as a regression row
    row_stride: int = 8
    #: k-means seeds tried per candidate structure at budget 1.0 (at least 2 at any budget):
    #: one k-means draw sometimes yields a map that falls silent or runs away in free run,
    #: so several draws are validated and the best held-out free run is kept
    n_seeds: int = 3
    #: the map's time step (s): the voltage and current are averaged over blocks of this
    #: length (5 samples at 10 kHz), which cuts the recording noise per step and lets a
    #: short embedding span more time
    map_step_s: float = 0.5e-3
    #: refit the chosen map's weights (same centres) on the whole training window when
    #: its free run over the held-out part stays within this much Gamma/R of the validated one
    refit_tolerance: float = 0.05
    #: refine the chosen ridge map on multi-step free runs (see :mod:`qsnmc_plugins.ddf.refine`),
    #: kept only if its held-out free run scores higher; None (default): ridge only, because the
    #: refined maps scored lower on held-out data (benchmarks/README.md), so it only cost time
    refine: RefineSettings | None = None

    def __init__(self, seed: int = 0, budget: float = 1.0, candidates: list[Candidate] | None = None) -> None:
        super().__init__(seed=seed, budget=budget)
        self._candidates = candidates
        self._map: FittedMap | None = None
        self._std: Standardiser | None = None
        self._warm: dict[str, Series] = {}
        self._rest: tuple[np.ndarray, np.ndarray] | None = None
        #: the last prediction's runaway report (steps clipped, first clipped time in s)
        self.last_forecast: dict[str, Any] = {}

    # -- fit -----------------------------------------------------------------------------
    def _plan(self, train: TrainingData) -> tuple[list[Candidate], int, int]:
        """Candidates, repetitions per stimulus and k-means seeds per candidate for this budget."""
        if self._candidates is not None:
            cands = list(self._candidates)
        else:
            n = max(1, min(len(CANDIDATE_GRID), int(round(len(CANDIDATE_GRID) * self.budget))))
            cands = [Candidate(EmbeddingConfig(d, t, s, input_lag=lag), nc, wf) for d, t, lag, s, nc, wf in CANDIDATE_GRID[:n]]
        max_reps = max(s.n_repetitions for s in train.stimuli)
        n_reps = max_reps if self.budget >= 0.5 else max(1, min(max_reps, int(np.ceil(2 * max_reps * self.budget))))
        n_seeds = max(2, min(self.n_seeds, int(round(self.n_seeds * self.budget))))
        return cands, n_reps, n_seeds

    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Choose and fit the map on the training windows; return the fit record."""
        t_start = time.perf_counter()
        step = coarse_step(train.dt_s, self.map_step_s)
        dt = train.dt_s * step
        std = standardiser_for(train)
        cands, n_reps, n_seeds = self._plan(train)
        series: list[Series] = []
        for stim in train.stimuli:
            series += stimulus_series(stim, std, list(range(min(n_reps, stim.n_repetitions))), step=step)
        starts = self._heldout_starts(series, dt)
        stops = [starts[s.stimulus] for s in series]
        best, trials = self._validate_candidates(cands, n_seeds, series, stops, starts, std, dt, train.delta_s)
        final, score = best.fitted.select(best.penalty_index), best.heldout_gamma_over_r
        refined_used, refine_record = False, None
        if self.refine is not None and np.isfinite(score):
            final, score, refine_record = self._refine(final, score, series, stops, starts, std, train.delta_s)
            refined_used = bool(refine_record["used"])
        # a refined map (fitted on the fit part only) is kept as it is: a ridge refit would undo the refinement
        refitted, refit_score = False, float("nan")
        if not refined_used:
            refit, refit_score, refitted = self._refit_on_whole_window(best, score, series, starts, std, dt, train.delta_s)
            if refitted:
                final = refit
        self._keep_for_prediction(final, std, series)
        return {
            "chosen": {**best.candidate.to_record(dt), "centre_seed": best.centre_seed,
                       "ridge_penalty": float(PENALTIES[best.penalty_index])},
            "map_step_ms": dt * 1e3,
            "samples_per_step": step,
            "heldout_gamma_over_r": score,
            "held_out_per_stimulus": best.heldout.per_stimulus() if best.heldout is not None else {},
            "heldout_start_s": {s.stimulus: s.time_s(starts[s.stimulus]) for s in series},
            "refitted_on_whole_window": refitted,
            "refine": refine_record,
            "refit_heldout_gamma_over_r_in_sample": refit_score,
            "embedding_estimates": _embedding_estimates(series[0], dt),
            "trials": trials,
            **_map_record(final, std),
            "repetitions_used": n_reps,
            "seeds_per_candidate": n_seeds,
            "fit_time_s": time.perf_counter() - t_start,
        }

    def _heldout_starts(self, series: list[Series], dt: float) -> dict[str, int]:
        """Where the held-out end of each stimulus' window starts (coarse samples)."""
        starts: dict[str, int] = {}
        for s in series:
            hold = min(int(self.holdout_fraction * s.n_samples), int(self.max_holdout_s * max(self.budget, 0.25) / dt))
            starts[s.stimulus] = s.n_samples - hold
        return starts

    def _validate_candidates(
        self,
        cands: list[Candidate],
        n_seeds: int,
        series: list[Series],
        stops: list[int],
        starts: dict[str, int],
        std: Standardiser,
        dt: float,
        delta_s: float,
    ) -> tuple[ValidatedMap, list[dict[str, Any]]]:
        """Fit every candidate with ``n_seeds`` k-means seeds on the fit part, score every ridge
        penalty by the held-out free run's Gamma/R; return the best and a record row per trial.

        When no trial scores, the last map fitted with its strongest penalty is returned (score NaN).
        """
        trials = []
        best: ValidatedMap | None = None
        progress = bar(len(cands) * n_seeds, desc="ddf candidates")
        for k, cand in enumerate(cands):
            for r in range(n_seeds):
                centre_seed = self.seed + 1000 * r + k
                fitted = fit_candidate(series, stops, cand, PENALTIES, dt, centre_seed, self.row_stride)
                val = validate(fitted, series, starts, std, delta_s)
                for j, pen in enumerate(PENALTIES):
                    score = float(val["gamma_over_r"][j])
                    trials.append(_trial_record(cand, dt, centre_seed, float(pen), val, j, fitted))
                    if np.isfinite(score) and (best is None or score > best.heldout_gamma_over_r):
                        best = ValidatedMap(score, cand, j, fitted, centre_seed, val["scores"][j])
                progress.update(1)
                progress.set_postfix(best_gamma_over_r=f"{best.heldout_gamma_over_r:.3f}" if best else "n/a")
        progress.close()
        if best is None:  # nothing scored: keep the last map, most strongly regularised
            best = ValidatedMap(float("nan"), cand, len(PENALTIES) - 1, fitted, centre_seed)
        return best, trials

    def _refit_on_whole_window(
        self,
        best: ValidatedMap,
        score: float,
        series: list[Series],
        starts: dict[str, int],
        std: Standardiser,
        dt: float,
        delta_s: float,
    ) -> tuple[FittedMap, float, bool]:
        """Refit the chosen map's weights (same centres and penalty) on the whole training window.

        The refit is to be kept only if its free run over the held-out part (now in-sample, so
        this checks stability, not generalisation) does not run away and stays within
        :attr:`refit_tolerance` of the validated Gamma/R ``score``. Returns (refit, its Gamma/R, keep).
        """
        j = best.penalty_index
        whole = [s.n_samples for s in series]
        refit = fit_candidate(series, whole, best.candidate, PENALTIES[j : j + 1], dt, 0, self.row_stride, rbf=best.fitted.rbf)
        refit_val = validate(refit, series, starts, std, delta_s)
        refit_score = float(refit_val["gamma_over_r"][0])
        keep = bool(
            np.isfinite(score)
            and np.isfinite(refit_score)
            and refit_val["runaway_steps"][0] == 0
            and refit_score >= score - self.refit_tolerance
        )
        return refit, refit_score, keep

    def _keep_for_prediction(self, final: FittedMap, std: Standardiser, series: list[Series]) -> None:
        """Store the map, the standardiser, each stimulus' first recording (for warm starts) and the resting state."""
        self._map, self._std = final, std
        self._warm = {}
        for s in series:
            self._warm.setdefault(s.stimulus, s)
        self._rest = self._resting_state(np.median(np.concatenate([s.v for s in series])))

    def _refine(
        self,
        ridge: FittedMap,
        ridge_score: float,
        series: list[Series],
        stops: list[int],
        starts: dict[str, int],
        std: Standardiser,
        delta_s: float,
    ) -> tuple[FittedMap, float, dict[str, Any]]:
        """Refine the chosen ridge map on multi-step free runs of the fit part (see :mod:`refine`).

        The refined map replaces the ridge map only if its free run over the held-out part
        does not run away and scores a higher Gamma/R (so refining never makes the chosen
        map worse on held-out data). Returns the kept map, its held-out Gamma/R and a record.
        """
        from qsnmc_plugins.ddf.refine import refine_map

        t_start = time.perf_counter()
        refined, record = refine_map(ridge, series, stops, std.v_mean_mV, std.v_sd_mV, self.refine, self.seed)
        val = validate(refined, series, starts, std, delta_s)
        ref_score = float(val["gamma_over_r"][0])
        used = bool(np.isfinite(ref_score) and val["runaway_steps"][0] == 0 and ref_score > ridge_score)
        record.update(
            ridge_heldout_gamma_over_r=ridge_score,
            heldout_gamma_over_r=ref_score,
            heldout_runaway_steps=int(val["runaway_steps"][0]),
            used=used,
            time_s=time.perf_counter() - t_start,
        )
        return (refined, ref_score, record) if used else (ridge, ridge_score, record)

    def _resting_state(self, v0: float) -> tuple[np.ndarray, np.ndarray]:
        """History and slow state after relaxing from ``v0`` with zero current."""
        fm = self._map
        cfg = fm.candidate.embedding
        hist = np.full(cfg.span + 1, v0)
        slow0 = np.full(fm.slow_alphas.size, v0)
        n = int(REST_RELAXATION_S / self._warm_dt())
        drive = np.zeros((n, 2))
        res = fm.run(drive, hist, slow0)
        v = np.concatenate([hist, res.v[0]])
        slow = slow_filters(v, fm.slow_alphas, initial=slow0)[-1 - cfg.input_lag] if fm.slow_alphas.size else np.zeros(0)
        return v[-(cfg.span + 1) :], slow

    def _warm_dt(self) -> float:
        return next(iter(self._warm.values())).dt_s

    # -- predict -------------------------------------------------------------------------
    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) in ``stimulus.window_s`` from a free run of the fitted map.

        A stimulus seen in training starts from the first repetition's recorded voltage
        at the start of the window (or the end of the training window, whichever is
        earlier); any other starts from the map's resting state at protocol time 0.
        """
        if self._map is None or self._std is None or self._rest is None:
            raise RuntimeError("fit the model before predicting")
        fm, std = self._map, self._std
        cfg = fm.candidate.embedding
        dt = stimulus.dt_s
        step = coarse_step(dt, self.map_step_s)
        a = int(round(stimulus.window_s[0] / dt))
        b = min(int(round(stimulus.window_s[1] / dt)), stimulus.current_pA.size)
        rec = self._warm.get(stimulus.name)
        k0 = 0  # protocol sample where the free run's first (known) coarse sample starts
        hist, slow = self._rest
        if rec is not None and abs(rec.fine_dt_s - dt) < 1e-12 and rec.step == step:
            k = min((a - rec.start_sample) // step, rec.n_samples - 1)
            if k >= cfg.span:
                k0 = rec.start_sample + k * step
                hist, slow = history_at(rec, k, fm)
        n_steps = max(1, -(-(b - k0) // step))
        drive = window_drive(stimulus.current_pA, k0, n_steps, std, step)
        res = fm.run(drive, hist, slow)
        v = np.concatenate([[hist[-1]], res.v[0]])
        spikes = forecast_spikes(v, std, dt * step, block_centre_s(k0, step, dt))[0]
        self.last_forecast = {
            "stimulus": stimulus.name,
            "warm_start_s": k0 * dt,
            "runaway_steps": int(res.runaway_steps[0]),
            "first_runaway_s": float(k0 * dt + (1 + res.first_runaway_step[0]) * dt * step) if res.ran_away[0] else None,
        }
        if res.ran_away[0]:
            warnings.warn(
                f"ddf: the forecast of {stimulus.name!r} left the training voltage range on "
                f"{res.runaway_steps[0]} steps (first at {self.last_forecast['first_runaway_s']:.4f} s); clipped",
                RuntimeWarning,
                stacklevel=2,
            )
        keep = (spikes >= stimulus.window_s[0]) & (spikes <= stimulus.window_s[1])
        return spikes[keep]


def _trial_record(cand: Candidate, dt: float, centre_seed: int, penalty: float, val: dict, j: int,
                  fitted: FittedMap) -> dict[str, Any]:
    """One validation trial (a candidate, k-means seed and penalty) for the fit record."""
    return {
        **cand.to_record(dt),
        "centre_seed": centre_seed,
        "ridge_penalty": penalty,
        "heldout_gamma": float(val["gamma"][j]),
        "heldout_gamma_over_r": float(val["gamma_over_r"][j]),
        "heldout_rate_hz": float(val["rate_hz"][j]),
        "runaway_steps": int(val["runaway_steps"][j]),
        "one_step_mse": float(fitted.train_mse[j]),
    }


def _embedding_estimates(first: Series, dt: float) -> dict[str, Any]:
    """The classical embedding estimates (AMI delay, FNN dimension) on the first 10 s of a series.

    For the record only: on a noisy voltage they are not the best forecasting embedding, which
    is chosen by the held-out free run instead.
    """
    sugg = suggest_embedding(first.v[: min(first.n_samples, int(10.0 / dt))], max_lag=100, max_dimension=8)
    return {
        "ami_first_minimum_tau_samples": sugg["tau"],
        "fnn_dimension": sugg["dimension"],
        "fnn_fraction": sugg["fnn"],
    }


def _map_record(final: FittedMap, std: Standardiser) -> dict[str, Any]:
    """The kept map's weights in physical units, its size and one-step error, for the fit record."""
    w = final.weights[0]
    nc = final.rbf.n_centres
    return {
        "standardiser": {"v_mean_mV": std.v_mean_mV, "v_sd_mV": std.v_sd_mV, "i_sd_pA": std.i_sd_pA},
        "weights": {
            "current_gain_mV_per_step_per_pA": [float(g) * std.v_sd_mV / std.i_sd_pA for g in w[nc + 1 : nc + 3]],
            "bias_mV_per_step": float(w[nc]) * std.v_sd_mV,
            "rbf_weight_rms_mV_per_step": float(np.sqrt(np.mean(w[:nc] ** 2))) * std.v_sd_mV,
        },
        "n_centres_used": nc,
        "regression_rows": final.n_rows,
        "one_step_rmse_mV": float(np.sqrt(final.train_mse[0])) * std.v_sd_mV,
    }
