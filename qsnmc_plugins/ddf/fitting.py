"""Fitting one candidate DDF map (centres, widths, ridge weights) and validating it by free runs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsnmc import ValidationScore, score_trains, spike_times_from_voltage, stretch_reliability
from qsnmc_plugins.ddf.centres import nearest_centre_widths, place_centres
from qsnmc_plugins.ddf.features import EmbeddingConfig, RBFLayer, Standardiser, linear_inputs, rbf_inputs, slow_filters
from qsnmc_plugins.ddf.forecast import ForecastResult, free_run
from qsnmc_plugins.ddf.ridge import NormalEquations, solve_ridge
from qsnmc_plugins.ddf.series import Series
from qsnmc_plugins.ddf.settings import DDFSettings

#: rows of the design matrix handled at once when accumulating the normal equations
CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class HeldOutPart:
    """The held-out end of one stimulus' training window."""

    name: str  #: the stimulus' name.
    start: int  #: the series' (map step) sample where the held-out part starts.
    window_s: tuple[float, float]  #: the held-out window (s), half-open.
    spike_times_s: tuple[np.ndarray, ...]  #: the recorded spike times (s) inside it, one array per repetition.


@dataclass(frozen=True)
class Structure:
    """One structure of the map (chosen on held-out data)."""

    embedding: EmbeddingConfig
    n_centres: int
    width_factor: float
    spike_share: float

    def to_record(self, dt_s: float) -> dict:
        return {**self.embedding.to_record(dt_s), "n_centres": self.n_centres, "width_factor": self.width_factor,
                "spike_centre_share": self.spike_share}


@dataclass
class FittedMap:
    """A candidate's fitted map, with one weight vector per ridge penalty."""

    structure: Structure  #: the structure.
    rbf: RBFLayer  #: centres and widths (standardised units).
    weights: np.ndarray  #: ``(n_penalties, n_centres + n_linear)`` (see :func:`features.linear_inputs`).
    penalties: np.ndarray  #: relative ridge penalties.
    train_mse: np.ndarray  #: one-step training mean squared error per penalty (standardised units^2).
    v_range: tuple[float, float]  #: standardised range a forecast may take before it counts as a runaway.
    slow_alphas: np.ndarray  #: per-step decay of the slow filters.
    n_rows: int  #: regression rows used.

    def select(self, j: int) -> "FittedMap":
        """The map with penalty ``j``'s weight vector only."""
        return FittedMap(self.structure, self.rbf, self.weights[j : j + 1], self.penalties[j : j + 1],
                         self.train_mse[j : j + 1], self.v_range, self.slow_alphas, self.n_rows)

    def run(self, drive: np.ndarray, v_history: np.ndarray, slow_state: np.ndarray) -> ForecastResult:
        """Free-run every weight vector on the standardised drive."""
        return free_run(self.structure.embedding, self.rbf, self.weights, drive, v_history, slow_state,
                        self.slow_alphas, self.v_range)


def _rows(s: Series, stop: int, first: int, stride: int, rng: np.random.Generator) -> np.ndarray:
    """Regression rows of one series: every spike state plus every ``stride``-th other sample."""
    n = np.arange(first, stop - 1)
    keep = s.spike_state[n] | ((n + int(rng.integers(stride))) % stride == 0)
    return n[keep]


def fit_candidate(series: list[Series], stops: list[int], structure: Structure, penalties: np.ndarray, dt_s: float,
                  seed: int, settings: DDFSettings, rbf: RBFLayer | None = None) -> FittedMap:
    """Fit a candidate on ``series[k].v[:stops[k]]`` for every k.

    Regression rows: every spike state plus every ``settings.row_stride``-th sample. Centres come
    from k-means on the RBF inputs of the regression rows (a share from the spike states), unless
    ``rbf`` gives them; the weights from ridge regression on the normal equations, for every
    penalty at once.
    """
    cfg = structure.embedding
    rng = np.random.default_rng(seed)
    warm = cfg.span + (int(3 * max(cfg.slow_taus_ms) * 1e-3 / dt_s) if cfg.slow_taus_ms else 0)
    slows = [slow_filters(s.v[:stop], dt_s, cfg.slow_taus_ms) for s, stop in zip(series, stops)]
    rows = [_rows(s, stop, min(warm, stop - 2), settings.row_stride, rng) for s, stop in zip(series, stops)]
    if rbf is None:  # centres: k-means on a random subset of the rows' RBF inputs
        per = max(2000, settings.kmeans_points // max(len(series), 1))
        pts, mask = [], []
        for s, sl, r in zip(series, slows, rows):
            pick = r if r.size <= per else np.sort(rng.choice(r, per, replace=False))
            pts.append(rbf_inputs(s.v, sl, pick, cfg))
            mask.append(s.spike_state[pick])
        centres = place_centres(np.concatenate(pts), np.concatenate(mask), structure.n_centres, structure.spike_share,
                                seed, settings.kmeans_max_points, settings.kmeans_iterations)
        rbf = RBFLayer(centres, nearest_centre_widths(centres, structure.width_factor))
    eq = NormalEquations(rbf.n_centres + cfg.n_linear)
    for s, sl, r in zip(series, slows, rows):
        for a in range(0, r.size, CHUNK_ROWS):
            idx = r[a : a + CHUNK_ROWS]
            x = np.concatenate([rbf(rbf_inputs(s.v, sl, idx, cfg)), linear_inputs(s.v, s.drive, sl, idx, cfg)], axis=1)
            eq.add(x, s.v[idx + 1] - s.v[idx])
    weights, mse = solve_ridge(eq, penalties)
    v_all = np.concatenate([s.v[:stop] for s, stop in zip(series, stops)])
    lo, hi = float(v_all.min()), float(v_all.max())
    slack = settings.runaway_slack * (hi - lo)
    return FittedMap(structure, rbf, weights, np.asarray(penalties, float), mse, (lo - slack, hi + slack),
                     cfg.slow_alphas(dt_s), eq.n_rows)


def history_at(s: Series, sample: int, fitted: FittedMap) -> tuple[np.ndarray, np.ndarray]:
    """The recorded history ``v[sample-span .. sample]`` and slow state at ``sample - input_lag``."""
    span = fitted.structure.embedding.span
    if sample < span:
        raise ValueError(f"sample {sample} has less history than the embedding's span {span}")
    lag = fitted.structure.embedding.input_lag
    taus = fitted.structure.embedding.slow_taus_ms
    slow = slow_filters(s.v[: sample + 1 - lag], s.dt_s, taus)[-1] if taus else np.zeros(0)
    return s.v[sample - span : sample + 1], slow


def forecast_spikes(v: np.ndarray, std: Standardiser, dt_s: float, t0_s: float) -> list[np.ndarray]:
    """Spike times (s) of standardised voltage rows (harness detector, 0 mV upward crossings)."""
    return spike_times_from_voltage(std.v_mV(np.atleast_2d(v)), dt_s, 0.0, t0_s)


def validate(fitted: FittedMap, series: list[Series], parts: list[HeldOutPart], std: Standardiser,
             delta_s: float) -> dict[str, np.ndarray]:
    """Free-run every penalty's map over each stimulus' held-out part; score against all repetitions.

    Each free run starts from the first repetition's recorded history at the part's start.

    Returns:
        ``{"gamma": (n_pen,), "gamma_over_r": (n_pen,), "runaway_steps": (n_pen,), "rate_hz": (n_pen,),
        "scores": [ValidationScore] * n_pen}``: mean Gamma and rate over stimuli; ``gamma_over_r`` is
        :attr:`qsnmc.ValidationScore.performance` (held-out stimuli with R under 0.3 left out; mean raw
        Gamma if none reaches it); ``scores`` per penalty, with Gamma/R and spike counts per stimulus.
    """
    n_pen = fitted.weights.shape[0]
    per_stimulus, runs, rates = [], [], []
    for part in parts:
        first = next(s for s in series if s.stimulus == part.name)
        h0 = part.start
        hist, slow = history_at(first, h0, fitted)
        res = fitted.run(first.drive[h0 : first.n_samples - 1], hist, slow)
        trains = forecast_spikes(np.column_stack([np.full(n_pen, first.v[h0]), res.v]), std, first.dt_s,
                                 first.centre_s(h0))
        r = stretch_reliability(part.spike_times_s, part.window_s, delta_s)
        per_stimulus.append([score_trains(part.name, part.spike_times_s, t, part.window_s, delta_s, reliability=r)
                             for t in trains])
        runs.append(res.runaway_steps)
        rates.append([t.size / (part.window_s[1] - part.window_s[0]) for t in trains])
    # the competition's way: Gamma/R per stimulus, equal weights, unreliable stimuli left out, never NaN
    scores = [ValidationScore(tuple(stim[j] for stim in per_stimulus)) for j in range(n_pen)]
    return {
        "gamma": np.array([np.mean([h.gamma for h in v.stimuli]) for v in scores]),
        "gamma_over_r": np.array([v.performance for v in scores]),
        "runaway_steps": np.sum(runs, axis=0),
        "rate_hz": np.mean(rates, axis=0),
        "scores": scores,
    }
