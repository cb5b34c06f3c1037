"""Refining a ridge-fitted DDF map on the error of multi-step free runs (iterated training).

Ridge regression fits the map on one-step errors, but the map is used in a free run of
thousands of steps, where small one-step errors compound and the spike times drift. Here
the ridge solution is the starting point of a gradient descent (``torch.optim.Adam``) on
the error of K-step free runs (:func:`rollout.torch_free_run`, step for step the same as
:func:`forecast.free_run`) started from the recorded history at random points of the fit
part of every repetition: the slow filter state is taken from the recording at the
start and then propagated from the forecast voltage inside the rollout. K grows in stages
(a curriculum: short rollouts first) and gradients are clipped. Two objectives:

- ``"voltage"``: mean squared error of the forecast voltage, both voltages capped at
  ``cap_mV`` first (spike-aware: a spike a millisecond early or late costs its onset, not
  the full height of a misplaced action potential);
- ``"spike_time"``: Huber loss (ms) between the forecast's and the recording's first
  upward crossing of ``spike_level_mV`` in each rollout, the forecast's crossing time
  interpolated between samples so that it is differentiable (a rollout without a
  recorded crossing penalises only a forecast crossing; one without a forecast crossing
  is pushed up by how far it stayed below the level).

The parameters are the RBF weights (optional), bias, current gains, slow-filter and delay
weights, each scaled by the root mean square of its feature so that one learning rate suits
all, and optionally the log RBF widths.

Off by default in :class:`DDFModel`: the refined maps scored lower on held-out data than the
ridge maps (the measurements are in ``benchmarks/README.md``, section ddf).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from qsnmc_plugins.ddf.features import RBFLayer, linear_inputs, rbf_inputs, slow_filters
from qsnmc_plugins.ddf.fitting import FittedMap
from qsnmc_plugins.ddf.rollout import torch_free_run
from qsnmc_plugins.ddf.series import Series

#: a forecast that never crosses the spike level counts as crossing this many steps after
#: the rollout's end per standardised unit it stayed below the level
GAP_STEPS_PER_UNIT = 20.0


@dataclass(frozen=True)
class RefineSettings:
    """How the multi-step refinement runs.

    Attributes:
        objective: ``"voltage"`` or ``"spike_time"`` (see the module docstring).
        horizons_ms: rollout length of each curriculum stage (ms).
        iterations: Adam iterations per stage.
        batch: rollouts per iteration (fresh random start points each iteration).
        learning_rate: Adam's step on the feature-scaled parameters (standardised voltage per step).
        grad_clip: largest gradient norm.
        cap_mV: ``"voltage"``: voltages are capped at this level (mV) before the error is taken; None: no cap.
        spike_level_mV: ``"spike_time"``: the level (mV) whose first upward crossing is a spike.
        huber_ms: ``"spike_time"``: the Huber loss is quadratic up to this timing error (ms).
        train_rbf_weights: refine the RBF weights too (else only bias, current, slow and delay weights).
        train_widths: refine the log RBF widths too.
    """

    objective: str = "voltage"
    horizons_ms: tuple[float, ...] = (5.0, 10.0, 20.0)
    iterations: int = 60
    batch: int = 128
    learning_rate: float = 1e-4
    grad_clip: float = 1.0
    cap_mV: float | None = -40.0
    spike_level_mV: float = -20.0
    huber_ms: float = 4.0
    train_rbf_weights: bool = True
    train_widths: bool = False

    def __post_init__(self) -> None:
        if self.objective not in ("voltage", "spike_time"):
            raise ValueError(f"unknown refinement objective {self.objective!r}")

    def to_record(self) -> dict:
        return {
            "objective": self.objective,
            "horizons_ms": list(self.horizons_ms),
            "iterations_per_stage": self.iterations,
            "batch": self.batch,
            "learning_rate": self.learning_rate,
            "grad_clip": self.grad_clip,
            "cap_mV": self.cap_mV,
            "spike_level_mV": self.spike_level_mV,
            "huber_ms": self.huber_ms,
            "train_rbf_weights": self.train_rbf_weights,
            "train_widths": self.train_widths,
        }


@dataclass
class _Pool:
    """The fit part of every series, concatenated, and where a rollout may start."""

    v: np.ndarray
    drive: np.ndarray
    slow: np.ndarray
    starts: np.ndarray = field(repr=False)


def _pool(series: list[Series], stops: list[int], fitted: FittedMap, max_steps: int) -> _Pool:
    """Concatenate ``series[k][:stops[k]]`` with their slow filters; list the valid start samples."""
    cfg = fitted.candidate.embedding
    dt = series[0].dt_s
    warm = cfg.span + (int(3 * max(cfg.slow_taus_ms) * 1e-3 / dt) if cfg.slow_taus_ms else 0)
    vs, ds, ss, starts, off = [], [], [], [], 0
    for s, stop in zip(series, stops):
        vs.append(s.v[:stop])
        ds.append(s.drive[:stop])
        ss.append(slow_filters(s.v[:stop], fitted.slow_alphas) if fitted.slow_alphas.size else np.zeros((stop, 0)))
        first = min(warm, max(stop - max_steps - 2, cfg.span))
        starts.append(off + np.arange(first, stop - max_steps - 1))
        off += stop
    return _Pool(np.concatenate(vs), np.concatenate(ds), np.concatenate(ss), np.concatenate(starts))


def _feature_rms(pool: _Pool, fitted: FittedMap, rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    """Root mean square of every regression feature over ``n`` random recorded states."""
    cfg = fitted.candidate.embedding
    rows = np.sort(rng.choice(pool.starts, min(n, pool.starts.size), replace=False))
    x = np.concatenate(
        [fitted.rbf(rbf_inputs(pool.v, pool.slow, rows, cfg)), linear_inputs(pool.v, pool.drive, pool.slow, rows, cfg)], axis=1
    )
    rms = np.sqrt(np.mean(x**2, axis=0))
    return np.where(rms > 1e-8, rms, 1.0)


def _batch(pool: _Pool, fitted: FittedMap, starts: np.ndarray, k: int) -> tuple[torch.Tensor, ...]:
    """History, slow state, drive and target of rollouts of ``k`` steps from ``starts``."""
    cfg = fitted.candidate.embedding
    hist = pool.v[starts[:, None] + np.arange(-cfg.span, 1)[None, :]]
    slow = pool.slow[starts - cfg.input_lag]
    steps = starts[:, None] + np.arange(k)[None, :]
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (hist, slow, pool.drive[steps], pool.v[steps + 1]))


def voltage_loss(pred: torch.Tensor, target: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Mean squared error of rollouts (standardised units^2), both voltages capped at ``cap`` first."""
    if cap is not None:
        pred, target = torch.clamp(pred, max=cap), torch.clamp(target, max=cap)
    return torch.mean((pred - target) ** 2)


def first_crossing(v: torch.Tensor, v_last: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable time of each row's first upward crossing of ``level`` (steps after ``v_last``).

    ``v`` ``(batch, n_steps)``: column k is k+1 steps after ``v_last`` ``(batch,)``. The time
    is interpolated linearly between the samples around the crossing, so it moves smoothly
    with the map's parameters. A row that never crosses gets ``n_steps +``
    :data:`GAP_STEPS_PER_UNIT` ``* (level - max v)``.

    Returns:
        ``(time in steps (batch,), crossed (batch,) bool)``.
    """
    above = v >= level
    crossed = above.any(dim=1)
    k = torch.argmax(above.to(torch.int8), dim=1)
    before = torch.cat([v_last[:, None], v], dim=1).gather(1, k[:, None])[:, 0]
    after = v.gather(1, k[:, None])[:, 0]
    t_cross = k.to(v.dtype) + (level - before) / torch.clamp(after - before, min=1e-6)
    t_none = v.shape[1] + GAP_STEPS_PER_UNIT * (level - v.max(dim=1).values)
    return torch.where(crossed, t_cross, t_none), crossed


def spike_time_loss(pred: torch.Tensor, target: torch.Tensor, v_last: torch.Tensor, level: float, dt_ms: float, huber_ms: float) -> torch.Tensor:
    """Huber loss (ms^2 scale) between the forecast's and the recording's first crossing of ``level``."""
    k = pred.shape[1]
    t_pred, _ = first_crossing(pred, v_last, level)
    t_true, _ = first_crossing(target, v_last, level)
    t_true = torch.clamp(t_true, max=float(k))
    err = (t_pred - t_true) * dt_ms
    err = torch.where(t_true >= k, torch.clamp(err, max=0.0), err)  # no recorded crossing: only too early counts
    return torch.nn.functional.huber_loss(err, torch.zeros_like(err), delta=huber_ms)


class _RolloutObjective:
    """The refinement's parameters (feature-scaled weights, log widths) and its loss on rollouts."""

    def __init__(self, fitted: FittedMap, pool: _Pool, scale: torch.Tensor, settings: RefineSettings,
                 v_mean_mV: float, v_sd_mV: float, dt_s: float) -> None:
        self.fitted, self.pool, self.scale, self.settings, self.dt_s = fitted, pool, scale, settings, dt_s
        nc = fitted.rbf.n_centres
        theta0 = torch.from_numpy(fitted.weights[0].copy()) * scale
        self.theta_rbf = torch.nn.Parameter(theta0[:nc].clone(), requires_grad=settings.train_rbf_weights)
        self.theta_lin = torch.nn.Parameter(theta0[nc:].clone())
        self.log_w = torch.nn.Parameter(torch.log(torch.from_numpy(fitted.rbf.widths.copy())), requires_grad=settings.train_widths)
        self.centres = torch.from_numpy(fitted.rbf.centres)
        self.alphas = torch.from_numpy(fitted.slow_alphas)
        self.cap = None if settings.cap_mV is None else (settings.cap_mV - v_mean_mV) / v_sd_mV
        self.level = (settings.spike_level_mV - v_mean_mV) / v_sd_mV

    @property
    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in (self.theta_rbf, self.theta_lin, self.log_w) if p.requires_grad]

    def weights(self) -> torch.Tensor:
        """The map's weights (unscaled), as :class:`FittedMap` holds them."""
        return torch.cat([self.theta_rbf, self.theta_lin]) / self.scale

    def start_points(self) -> np.ndarray:
        """Where rollouts may start; the spike-time objective starts below the spike level only
        (a start inside a spike has crossed already)."""
        if self.settings.objective == "voltage":
            return self.pool.starts
        return self.pool.starts[self.pool.v[self.pool.starts] < self.level]

    def __call__(self, idx: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, forecast, recording) of ``k``-step rollouts from the start samples ``idx``."""
        hist, slow, drive, target = _batch(self.pool, self.fitted, idx, k)
        pred = torch_free_run(self.fitted.candidate.embedding, self.centres, torch.exp(self.log_w), self.weights(),
                              drive, hist, slow, self.alphas, self.fitted.v_range)
        if self.settings.objective == "voltage":
            loss = voltage_loss(pred, target, self.cap)
        else:
            loss = spike_time_loss(pred, target, hist[:, -1], self.level, self.dt_s * 1e3, self.settings.huber_ms)
        return loss, pred, target

    def check_figures(self, check: np.ndarray, k: int, v_sd_mV: float) -> tuple[float, float]:
        """(loss, rollout RMSE in mV) on the fixed start points ``check`` at horizon ``k``, without gradients."""
        with torch.no_grad():
            loss, pred, target = self(check, k)
            return float(loss), float(torch.sqrt(torch.mean((pred - target) ** 2))) * v_sd_mV

    def refined_map(self) -> FittedMap:
        """The map with the current parameters (its ``train_mse`` still the ridge map's)."""
        fm = self.fitted
        with torch.no_grad():
            weights = self.weights().numpy()[None, :].copy()
            widths = torch.exp(self.log_w).numpy().copy()
        rbf = RBFLayer(fm.rbf.centres.copy(), widths) if self.settings.train_widths else fm.rbf
        return FittedMap(fm.candidate, rbf, weights, fm.penalties, fm.train_mse, fm.v_range, fm.slow_alphas, fm.n_rows)


def refine_map(
    fitted: FittedMap,
    series: list[Series],
    stops: list[int],
    v_mean_mV: float,
    v_sd_mV: float,
    settings: RefineSettings,
    seed: int,
) -> tuple[FittedMap, dict]:
    """Refine ``fitted`` (one weight vector) on multi-step rollouts in ``series[k].v[:stops[k]]``.

    Args:
        fitted: a map with one weight vector (see :meth:`FittedMap.select`).
        series, stops: the recordings and where each one's fit part ends (coarse samples).
        v_mean_mV, v_sd_mV: the standardiser's voltage mean and SD (mV).
        settings: the refinement's settings.
        seed: seed of the start points.

    Returns:
        The refined map (its ``train_mse`` is still the ridge map's one-step error), and a
        record: the objective on a fixed set of start points at the longest horizon before
        and after, and the rollout RMSE (mV) there before and after.
    """
    if fitted.weights.shape[0] != 1:
        raise ValueError("refine one weight vector at a time (FittedMap.select)")
    dt = series[0].dt_s
    horizons = [max(1, int(round(h * 1e-3 / dt))) for h in settings.horizons_ms]
    pool = _pool(series, stops, fitted, max(horizons))
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    scale = torch.from_numpy(_feature_rms(pool, fitted, rng))
    objective = _RolloutObjective(fitted, pool, scale, settings, v_mean_mV, v_sd_mV, dt)
    starts = objective.start_points()
    check = np.sort(rng.choice(starts, min(4 * settings.batch, starts.size), replace=False))
    loss_before, rmse_before = objective.check_figures(check, max(horizons), v_sd_mV)
    _descend(objective, starts, horizons, settings, gen)
    loss_after, rmse_after = objective.check_figures(check, max(horizons), v_sd_mV)
    record = {
        **settings.to_record(),
        "check_loss_before": loss_before,
        "check_loss_after": loss_after,
        "rollout_rmse_mV_before": rmse_before,
        "rollout_rmse_mV_after": rmse_after,
    }
    return objective.refined_map(), record


def _descend(objective: _RolloutObjective, starts: np.ndarray, horizons: list[int], settings: RefineSettings,
             gen: torch.Generator) -> None:
    """Adam on the objective, ``settings.iterations`` steps at each horizon (steps) in turn,
    each on a fresh batch of random start points, gradients clipped."""
    params = objective.parameters
    opt = torch.optim.Adam(params, lr=settings.learning_rate)
    for k in horizons:
        for _ in range(settings.iterations):
            idx = starts[torch.randint(starts.size, (settings.batch,), generator=gen).numpy()]
            loss = objective(idx, k)[0]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
            opt.step()
