"""Backpropagation through time with sparse teacher forcing, with checkpoints and restarts."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from qsnmc_plugins.dendplrnn.network import DendPLRNN
from qsnmc_plugins.dendplrnn.teacher_forcing import forcing_schedule


class FitFailed(RuntimeError):
    """Training diverged repeatedly, even after restarts at lower learning rates."""


@dataclass(frozen=True)
class SequenceData:
    """Training sequences on the network's grid.

    Attributes:
        voltage: (n_reps, n_steps) standardised voltage.
        inputs: (n_steps, n_in) standardised current.
        weights: (n_reps, n_steps) loss weights.
        stop: windows are drawn from steps ``[0, stop)`` only (the rest is held out).
    """

    voltage: np.ndarray
    inputs: np.ndarray
    weights: np.ndarray
    stop: int


@dataclass(frozen=True)
class TrainConfig:
    """One training configuration (steps are network steps)."""

    m: int = 24  #: latent units
    n_bases: int = 8  #: dendritic bases B
    tau: int = 20  #: sparse teacher forcing interval (steps)
    n_in: int = 1  #: input channels (the current, and its filtrates when a filter bank is used)
    seq_len: int = 250  #: steps per window with loss
    burn_in: int = 30  #: fully forced steps before the loss starts
    batch_size: int = 64
    lr: float = 2e-2  #: RAdam's learning rate (the best of three tried, see benchmarks/README.md)
    grad_clip: float = 1.0
    #: decay of the exponential moving average of the weights that is evaluated and checkpointed
    #: (0: the raw weights): at lr 2e-2 the raw weights' score swings between checks, the
    #: average over the last ~1 / (1 - decay) steps is steadier
    ema_decay: float = 0.97
    #: generalised teacher forcing between the sparse forcing steps (0: off, pure sparse TF)
    gtf_alpha: float = 0.0


@dataclass
class TrainState:
    """A network with its optimiser, training history and best checkpoint."""

    net: DendPLRNN
    optimiser: torch.optim.Optimizer
    config: TrainConfig
    rng: np.random.Generator
    losses: list[float] = field(default_factory=list)
    #: (iteration, score) at every checkpoint: what ``evaluate`` returned (the dendPLRNN model's
    #: selection score, a free run over the whole training window)
    checkpoint_scores: list[tuple[int, float]] = field(default_factory=list)
    best_score: float = -math.inf
    best_iteration: int = 0
    best_state: dict | None = None
    restarts: int = 0
    ema: torch.optim.swa_utils.AveragedModel | None = None  #: moving average of ``net`` (None: off)
    _good: tuple | None = None

    @property
    def evaluated(self) -> DendPLRNN:
        """The network that is evaluated and checkpointed: the weight average, else the raw weights."""
        return self.ema.module if self.ema is not None else self.net

    @property
    def iterations(self) -> int:
        return len(self.losses)


def new_state(config: TrainConfig, seed: int, device: torch.device) -> TrainState:
    """A freshly initialised network (from ``seed``) with its optimiser and weight average."""
    g = torch.Generator().manual_seed(seed)
    net = DendPLRNN(config.m, config.n_bases, n_in=config.n_in, generator=g).to(device)
    opt = torch.optim.RAdam(net.parameters(), lr=config.lr)
    ema = None
    if config.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel

        ema = AveragedModel(net, avg_fn=_ema_with_warmup(config.ema_decay), use_buffers=True)
    return TrainState(net, opt, config, np.random.default_rng(seed), ema=ema)


def _ema_with_warmup(decay: float) -> Callable:
    """Exponential moving average whose decay ramps up as min(decay, (1 + n) / (10 + n)) over
    the first updates (n averaged so far), so that short fits are not dominated by the
    untrained initial weights."""

    def avg_fn(averaged: torch.Tensor, current: torch.Tensor, num_averaged) -> torch.Tensor:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        return averaged * d + current * (1.0 - d)

    return avg_fn


def _batch(data: SequenceData, cfg: TrainConfig, rng: np.random.Generator, device: torch.device):
    """Voltage, inputs and loss weights of ``cfg.batch_size`` random windows from random repetitions."""
    n = cfg.burn_in + cfg.seq_len
    reps = rng.integers(0, data.voltage.shape[0], cfg.batch_size)
    starts = rng.integers(0, data.stop - n, cfg.batch_size)
    idx = starts[:, None] + np.arange(n)
    x = torch.from_numpy(data.voltage[reps[:, None], idx]).unsqueeze(-1).to(device)
    s = torch.from_numpy(data.inputs[idx]).to(device)
    w = torch.from_numpy(data.weights[reps[:, None], idx]).to(device)
    return x, s, w


def batch_loss(net: DendPLRNN, x: torch.Tensor, s: torch.Tensor, w: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Weighted MSE of the observed voltage under sparse teacher forcing (burn-in excluded)."""
    forcing = forcing_schedule(x.shape[1], cfg.tau, cfg.burn_in)
    z0 = torch.zeros(x.shape[0], net.m, device=x.device)
    z0 = torch.cat([x[:, 0], z0[:, net.n_obs:]], dim=1)
    pred = net.rollout(z0, s, x, torch.from_numpy(forcing), cfg.gtf_alpha)
    b = cfg.burn_in
    err = (pred[:, b:] - x[:, b:]).squeeze(-1) ** 2
    return (err * w[:, b:]).sum() / w[:, b:].sum()


def train(state: TrainState, data: SequenceData, n_iterations: int, evaluate: Callable[[DendPLRNN], float],
          eval_every: int, device: torch.device, progress=None, max_restarts: int = 3,
          lr_end_factor: float = 1.0) -> TrainState:
    """Run ``n_iterations`` optimiser steps, scoring the network with ``evaluate`` every ``eval_every``
    steps (higher is better); the best-scoring checkpoint is kept in ``state.best_state``.

    The learning rate decays geometrically by ``lr_end_factor`` over these steps (1: constant).

    With ``config.ema_decay > 0`` the moving average of the weights (``state.evaluated``) is
    what gets evaluated and stored as ``state.best_state``.

    A non-finite or exploding loss (or a free run that diverges in evaluation, scored
    -inf) restores the last good checkpoint and halves the learning rate; after
    ``max_restarts`` such restarts :class:`FitFailed` is raised.
    """
    cfg, net, opt = state.config, state.net, state.optimiser
    if state._good is None:
        state._good = _snapshot(state)
    done = 0
    decay = lr_end_factor ** (1.0 / max(n_iterations, 1))
    while done < n_iterations:
        x, s, w = _batch(data, cfg, state.rng, device)
        loss = batch_loss(net, x, s, w, cfg)
        value = float(loss.detach())
        if not math.isfinite(value) or (state.losses and value > 1e3 * max(min(state.losses), 1e-3)):
            _restart(state, f"loss {value:.3g} at iteration {state.iterations}", max_restarts)
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        net.project()
        if state.ema is not None:
            state.ema.update_parameters(net)
        for group in opt.param_groups:
            group["lr"] *= decay
        state.losses.append(value)
        done += 1
        if progress is not None:
            progress.update(1)
        if state.iterations % eval_every == 0 or done == n_iterations:
            score = evaluate(state.evaluated)
            state.checkpoint_scores.append((state.iterations, score))
            if score == -math.inf:
                _restart(state, f"free run diverged at iteration {state.iterations}", max_restarts)
                continue
            state._good = _snapshot(state)
            if score > state.best_score:
                state.best_score, state.best_iteration = score, state.iterations
                state.best_state = copy.deepcopy(state.evaluated.state_dict())
            if progress is not None:
                progress.set_postfix(loss=f"{value:.3f}", score=f"{score:.3f}", best=f"{state.best_score:.3f}")
    return state


def _restart(state: TrainState, reason: str, max_restarts: int) -> None:
    state.restarts += 1
    if state.restarts > max_restarts:
        raise FitFailed(f"training diverged {state.restarts} times (last: {reason}); giving up")
    net_sd, opt_sd, ema_sd = state._good
    state.net.load_state_dict(net_sd)
    state.optimiser.load_state_dict(opt_sd)
    if state.ema is not None:
        state.ema.load_state_dict(ema_sd)
    for group in state.optimiser.param_groups:
        group["lr"] *= 0.5 ** state.restarts


def _snapshot(state: TrainState) -> tuple:
    """Deep copies of the network, optimiser and weight-average states (the last good checkpoint)."""
    ema = copy.deepcopy(state.ema.state_dict()) if state.ema is not None else None
    return copy.deepcopy(state.net.state_dict()), copy.deepcopy(state.optimiser.state_dict()), ema
