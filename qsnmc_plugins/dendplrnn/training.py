"""Backpropagation through time with sparse teacher forcing, with checkpoints and restarts.

The loss is the weighted MSE of the voltage unit (sparse teacher forcing every ``tau``
steps after the forced burn-in; ``tau = 0``: no forcing after the burn-in) plus the
Bernoulli likelihood of the spike hazard against the fraction of repetitions spiking in
each step, both over the steps after the burn-in.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from qsnmc_plugins.dendplrnn.fast_rollout import fast_rollout
from qsnmc_plugins.dendplrnn.network import DendPLRNN
from qsnmc_plugins.dendplrnn.sequences import make_batch
from qsnmc_plugins.dendplrnn.settings import DendPLRNNSettings
from qsnmc_plugins.hazard.checkpoints import BestCheckpoint, averaging_decay
from qsnmc_plugins.hazard.recovery import Snapshots, TrainingDiverged
from qsnmc_plugins.hazard.targets import base_rate_entropy
from qsnmc_plugins.hazard.windows import StimulusSequence, sample_windows


_DEFAULTS = DendPLRNNSettings()  # the entry's settings: the one place of the defaults a configuration takes


@dataclass(frozen=True)
class TrainConfig:
    """One member's training configuration (steps are network steps); defaults: the entry's settings
    and its first member."""

    m: int = _DEFAULTS.members[0][1]  #: latent units
    n_bases: int = _DEFAULTS.members[0][2]  #: dendritic bases B
    tau: int = _DEFAULTS.members[0][0]  #: sparse teacher forcing interval (steps); 0: none after the burn-in
    n_in: int = 1  #: input channels (the current, and its filtrates when a filter bank is used)
    seq_len: int = _DEFAULTS.seq_len  #: steps per window with loss
    burn_in: int = _DEFAULTS.burn_in  #: fully forced steps before the loss starts
    batch_size: int = _DEFAULTS.batch_size
    lr: float = _DEFAULTS.lr  #: RAdam's learning rate
    grad_clip: float = 1.0  #: maximum norm of the gradient per optimiser step
    adam_beta2: float = _DEFAULTS.adam_beta2  #: RAdam's second-moment decay
    #: decay of the moving average of the weights that is evaluated and checkpointed (0: the raw weights)
    ema_decay: float = _DEFAULTS.ema_decay
    #: weight of the spike hazard's cross-entropy in the loss (0: voltage only)
    spike_loss_weight: float = _DEFAULTS.spike_loss_weight
    base_rate: float = 0.01  #: mean spike probability per step (the hazard's initial bias)


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
    best: BestCheckpoint = field(default_factory=BestCheckpoint)  #: iteration, score and state of the best
    restarts: int = 0
    #: returns to the best checkpoint's state after a held-out collapse: (iteration, score, back to iteration)
    rollbacks: list[tuple[int, float, int]] = field(default_factory=list)
    ema: torch.optim.swa_utils.AveragedModel | None = None  #: moving average of ``net`` (None: off)
    train_seconds: float = 0.0  #: wall time spent in optimiser iterations (batching, forward, backward, step)
    #: what a restart and a rollback go back to (net, optimiser, average); made when training starts
    snapshots: Snapshots | None = None

    @property
    def samples_per_s(self) -> float:
        """Training throughput: window steps (burn-in included) per second of optimiser iterations."""
        n = self.iterations * self.config.batch_size * (self.config.burn_in + self.config.seq_len)
        return n / self.train_seconds if self.train_seconds > 0 else 0.0

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
    net = DendPLRNN(config.m, config.n_bases, n_in=config.n_in, generator=g, base_rate=config.base_rate).to(device)
    opt = torch.optim.RAdam(net.parameters(), lr=config.lr, betas=(0.9, config.adam_beta2))
    ema = None
    if config.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel

        ema = AveragedModel(net, avg_fn=_ema_with_warmup(config.ema_decay), use_buffers=True)
    return TrainState(net, opt, config, np.random.default_rng(seed), ema=ema)


def _ema_with_warmup(decay: float) -> Callable:
    """Exponential moving average whose decay ramps up over the first updates
    (:func:`~qsnmc_plugins.hazard.checkpoints.averaging_decay` of the number averaged so far)."""

    def avg_fn(averaged: torch.Tensor, current: torch.Tensor, num_averaged) -> torch.Tensor:
        d = averaging_decay(decay, float(num_averaged))
        return averaged * d + current * (1.0 - d)

    return avg_fn


def forcing_schedule(n_steps: int, tau: int, burn_in: int = 0) -> np.ndarray:
    """Sparse teacher forcing's schedule (Mikhaeil, Monfared & Durstewitz 2022): a boolean mask
    (n_steps,), True where the observed units are replaced by the data.

    Steps ``0 .. burn_in - 1`` are all forced (the hidden units settle onto the
    recording; no loss is taken there). From the anchor ``a = max(burn_in - 1, 0)`` on,
    forcing happens exactly every ``tau`` steps (``t = a + k * tau``) and the network
    runs freely in between. ``tau = 1`` is classical teacher forcing.
    """
    if tau < 1:
        raise ValueError(f"tau must be >= 1 step, got {tau}")
    if not 0 <= burn_in <= n_steps:
        raise ValueError(f"burn_in must be in [0, {n_steps}], got {burn_in}")
    anchor = max(burn_in - 1, 0)
    t = np.arange(n_steps)
    return (t <= anchor) | ((t - anchor) % tau == 0)


def batch_loss(net: DendPLRNN, x: torch.Tensor, s: torch.Tensor, w: torch.Tensor, cfg: TrainConfig,
               y: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted MSE of the observed voltage under sparse teacher forcing, plus
    ``cfg.spike_loss_weight`` times the hazard's binary cross-entropy against the spike
    fractions ``y`` (N, T), divided by that of a constant base rate (burn-in excluded)."""
    n = x.shape[1]
    forcing = torch.from_numpy(forcing_schedule(n, cfg.tau if cfg.tau > 0 else n + 1, cfg.burn_in))
    z0 = torch.zeros(x.shape[0], net.m, device=x.device)
    z0 = torch.cat([x[:, 0], z0[:, net.n_obs:]], dim=1)
    b = cfg.burn_in
    states = fast_rollout(net, z0, s, x, forcing)
    pred = states[..., : net.n_obs]
    err = (pred[:, b:] - x[:, b:]).squeeze(-1) ** 2
    loss = (err * w[:, b:]).sum() / w[:, b:].sum()
    if cfg.spike_loss_weight > 0.0 and y is not None:
        logits = net.hazard_logits(states[:, b:])
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[:, b:])
        loss = loss + cfg.spike_loss_weight * bce / base_rate_entropy(cfg.base_rate)
    return loss


def train(state: TrainState, data: list[StimulusSequence], n_iterations: int, evaluate: Callable[[DendPLRNN], float],
          eval_every: int, device: torch.device, progress=None, max_restarts: int = 3,
          lr_end_factor: float = 1.0, rollback_drop: float = 0.0) -> TrainState:
    """Run ``n_iterations`` optimiser steps, scoring the network with ``evaluate`` every ``eval_every``
    steps (higher is better); the best-scoring checkpoint is kept in ``state.best``.

    The learning rate decays geometrically by ``lr_end_factor`` over these steps (1: constant).

    With ``config.ema_decay > 0`` the moving average of the weights (``state.evaluated``) is
    what gets evaluated and stored as ``state.best``.

    A non-finite or exploding loss (or a free run that diverges in evaluation, scored -inf)
    restores the last good checkpoint and halves the learning rate; after ``max_restarts`` such
    restarts :class:`~qsnmc_plugins.hazard.recovery.TrainingDiverged` is raised. A score more than
    ``rollback_drop`` below the best so far (a collapse; 0: never) returns to the best
    checkpoint's state at half the current learning rate, at most ``max_restarts`` times; the
    iteration count goes on, so the cost stays the same.
    """
    cfg, net, opt = state.config, state.net, state.optimiser
    if state.snapshots is None:
        state.snapshots = Snapshots(net, opt, state.ema)
    done = 0
    decay = lr_end_factor ** (1.0 / max(n_iterations, 1))
    while done < n_iterations:
        t0 = time.perf_counter()
        windows = sample_windows(data, cfg.batch_size, cfg.burn_in + cfg.seq_len, state.rng, per_repetition=True)
        # voltage, inputs, voltage weights and spike targets of the windows
        x, s, w, y = (torch.from_numpy(a).to(device) for a in make_batch(data, windows, cfg.burn_in + cfg.seq_len))
        loss = batch_loss(net, x, s, w, cfg, y)
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
        state.train_seconds += time.perf_counter() - t0
        done += 1
        if progress is not None:
            progress.update(1)
        if state.iterations % eval_every == 0 or done == n_iterations:
            score = evaluate(state.evaluated)
            state.checkpoint_scores.append((state.iterations, score))
            if score == -math.inf:
                _restart(state, f"free run diverged at iteration {state.iterations}", max_restarts)
                continue
            if state.snapshots.collapsed(score, state.best.score, rollback_drop, len(state.rollbacks), max_restarts):
                _roll_back(state, score)
                continue
            state.snapshots.good = state.snapshots.take(state.iterations)
            if score > state.best.score:
                state.snapshots.at_best = state.snapshots.good
            state.best.offer(state.iterations, score, state.evaluated)
            if progress is not None:
                progress.set_postfix(loss=f"{value:.3f}", score=f"{score:.3f}", best=f"{state.best.score:.3f}")
    return state


def _restart(state: TrainState, reason: str, max_restarts: int) -> None:
    state.restarts += 1
    if state.restarts > max_restarts:
        raise TrainingDiverged(f"training diverged {state.restarts} times (last: {reason}); giving up")
    state.snapshots.load(state.snapshots.good)
    for group in state.optimiser.param_groups:
        group["lr"] *= 0.5 ** state.restarts


def _roll_back(state: TrainState, score: float) -> None:
    """Back to the best checkpoint's weights, average and optimiser state, at half the current rate."""
    lrs = [group["lr"] for group in state.optimiser.param_groups]
    state.snapshots.load(state.snapshots.at_best)
    for group, lr in zip(state.optimiser.param_groups, lrs):
        group["lr"] = 0.5 * lr
    state.rollbacks.append((state.iterations, score, state.best.step))
    state.snapshots.good = state.snapshots.take(state.iterations)
