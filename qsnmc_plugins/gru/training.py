"""Training one network on the spike likelihood, with checkpoints chosen on held-out data.

Binary cross-entropy between the network's hazard and the fraction of repetitions spiking
in each bin (a Bernoulli likelihood per bin), over windows drawn from the fit part of every
stimulus (burn-in bins excluded from the loss). Adam, with a linear warm-up of the learning
rate over the first tenth of the steps then cosine decay, and gradient clipping. Every
``eval_every`` steps the network (with ``ema_decay``: the exponential moving average of its
weights, and the raw weights only after the last step) is scored on the held-out part
(Gamma/R of its best readout) and the best checkpoint (of the average, if there is one) is
kept, or with ``keep="last"`` the weights after the last step. A non-finite loss or gradient
restores the last good checkpoint and halves the learning rate; after ``max_recoveries`` such
events :class:`TrainingDiverged` is raised.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Generator

import numpy as np
import torch

from qsnmc_plugins.gru.batching import StimulusSequence, make_batch, sample_windows
from qsnmc_plugins.gru.network import SpikeHazardNet


class TrainingDiverged(RuntimeError):
    """The loss stayed non-finite after every recovery (restart from the last good checkpoint at a lower rate)."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (bins are ``bin_s`` wide, see the model)."""

    hidden: int = 64
    cell: str = "gru"
    steps: int = 300
    batch_size: int = 32
    seq_bins: int = 1000
    burn_bins: int = 200
    lr: float = 5e-3
    grad_clip: float = 1.0
    #: Adam's second-moment decay
    adam_beta2: float = 0.999
    #: burn-in bins run without gradient (forward only; the loss never sees them anyway)
    burn_no_grad: bool = False
    eval_every: int = 25
    max_recoveries: int = 3
    #: decay of an exponential moving average of the weights per step (0: no average);
    #: with an average, the averaged network is evaluated and may be kept at each checkpoint
    ema_decay: float = 0.0
    #: "best": keep the evaluated checkpoint with the highest held-out Gamma/R;
    #: "last": keep the network (its average, with ``ema_decay``) after the last step
    keep: str = "best"

    def as_record(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """A trained network (at its best checkpoint) and its history."""

    net: SpikeHazardNet
    best_step: int
    best_score: float
    loss_curve: list[float] = field(default_factory=list)
    heldout_curve: list[dict[str, float]] = field(default_factory=list)
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    samples_per_s: float = 0.0
    #: held-out scores of the weight average at each evaluation (empty without ``ema_decay``)
    ema_curve: list[dict[str, float]] = field(default_factory=list)


def train_network(sequences: list[StimulusSequence], config: TrainConfig, seed: int, base_rate: float,
                  evaluate: Callable[[SpikeHazardNet], dict[str, float]], device: torch.device,
                  progress=None, lr_schedule_steps: int | None = None,
                  fault: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> TrainResult:
    """Train one network from seed ``seed`` to ``config.steps`` (see :func:`training_run`)."""
    return finish(training_run(sequences, config, seed, base_rate, evaluate, device, progress, lr_schedule_steps,
                               fault))


def finish(run: Generator[tuple[int, TrainResult], None, TrainResult]) -> TrainResult:
    """Drive a :func:`training_run` to its end; its result."""
    while True:
        try:
            next(run)
        except StopIteration as stop:
            return stop.value


def training_run(sequences: list[StimulusSequence], config: TrainConfig, seed: int, base_rate: float,
                 evaluate: Callable[[SpikeHazardNet], dict[str, float]], device: torch.device,
                 progress=None, lr_schedule_steps: int | None = None,
                 fault: Callable[[int, torch.Tensor], torch.Tensor] | None = None
                 ) -> Generator[tuple[int, TrainResult], None, TrainResult]:
    """Train one network from seed ``seed``, as a generator: it yields ``(step, result so far)``
    after every held-out evaluation (so that a caller can compare runs part-way and drop one)
    and returns the :class:`TrainResult` (network at its kept checkpoint) after ``config.steps``.

    Args:
        sequences: the fit part of every stimulus, one sequence each.
        evaluate: net -> ``{"gamma_over_r": held-out P, ...}`` (called in eval mode, no grad);
            the checkpoint with the highest ``gamma_over_r`` is kept.
        base_rate: mean spike probability per bin (initial output bias).
        progress: optional progress bar (``update(1)`` per step).
        fault: test hook, (step, loss) -> loss, e.g. to inject a NaN.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_in = sequences[0].inputs.shape[1]
    net = SpikeHazardNet(n_in, config.hidden, config.cell, base_rate).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.9, config.adam_beta2))
    lr_scale = 1.0
    _set_lr(opt, 0, config, lr_schedule_steps, lr_scale)
    good = (copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict()), 0, copy.deepcopy(net.state_dict()))
    result = TrainResult(net, 0, -math.inf)
    best_state = copy.deepcopy(net.state_dict())
    ema = copy.deepcopy(net) if config.ema_decay > 0 else None
    if config.keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', got {config.keep!r}")
    losses: list[float] = []
    seconds, samples = 0.0, 0
    step = 0
    while step < config.steps:
        t = time.perf_counter()
        net.train()
        x, y = make_batch(sequences, sample_windows(sequences, config.batch_size, config.seq_bins, rng),
                          config.seq_bins, config.burn_bins)
        x = torch.from_numpy(x).to(device)
        y = torch.from_numpy(y).to(device)
        if config.burn_no_grad:
            logits = net.forward_after_burn_in(x, config.burn_bins)
        else:
            logits = net(x)[:, config.burn_bins:]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        if fault is not None:
            loss = fault(step, loss)
        opt.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(loss))
        if finite:
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            finite = bool(torch.isfinite(norm))
        if not finite:
            if len(result.recoveries) >= config.max_recoveries:
                raise TrainingDiverged(
                    f"{config.cell} network (seed {seed}): non-finite loss at step {step} after "
                    f"{len(result.recoveries)} restarts from the last good checkpoint at lower learning rates")
            net.load_state_dict(good[0])
            opt.load_state_dict(good[1])
            if ema is not None:
                ema.load_state_dict(good[3])
            lr_scale *= 0.5
            result.recoveries.append({"step": step, "restart_from_step": good[2], "lr_scale": lr_scale})
            step = good[2]
            _set_lr(opt, step, config, lr_schedule_steps, lr_scale)
            continue
        opt.step()
        step += 1
        if ema is not None:  # average warms up: decay (1 + step) / (10 + step) early on
            d = min(config.ema_decay, (1.0 + step) / (10.0 + step))
            with torch.no_grad():
                torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - d)
        _set_lr(opt, step, config, lr_schedule_steps, lr_scale)
        losses.append(float(loss.detach()))
        seconds += time.perf_counter() - t
        samples += x.shape[0] * x.shape[1]
        if progress is not None:
            progress.update(1)
        if step % config.eval_every == 0 or step == config.steps:
            kept = ema if ema is not None else net
            if config.keep == "best" or step == config.steps:
                if ema is None or step == config.steps:  # with an average, the raw weights only at the end
                    net.eval()
                    with torch.no_grad():
                        ev = {"step": step, **evaluate(net)}
                    result.heldout_curve.append(ev)
                if ema is not None:
                    ema.eval()
                    with torch.no_grad():
                        ev = {"step": step, **evaluate(ema)}
                    result.ema_curve.append(ev)
                if ev["gamma_over_r"] > result.best_score or config.keep == "last":
                    result.best_score, result.best_step = ev["gamma_over_r"], step
                    best_state = copy.deepcopy(kept.state_dict())
            if all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                good = (copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict()), step,
                        copy.deepcopy(kept.state_dict()))
            result.samples_per_s = samples / seconds if seconds > 0 else 0.0
            yield step, result
    net.load_state_dict(best_state)
    net.eval()
    result.loss_curve = losses
    result.samples_per_s = samples / seconds if seconds > 0 else 0.0
    return result


def _set_lr(opt, step: int, config: TrainConfig, schedule_steps: int | None, scale: float) -> None:
    """Learning rate at ``step``: a linear warm-up over the first tenth of the steps, then cosine
    decay to 2 % of ``lr``; times ``scale`` (halved after each recovery)."""
    total = schedule_steps or config.steps
    warm = max(1, total // 10)
    lo = config.lr * 0.02
    if step < warm:
        lr = config.lr * (step + 1) / warm
    else:
        lr = lo + 0.5 * (config.lr - lo) * (1 + math.cos(math.pi * min(step - warm, total - warm) / (total - warm)))
    for g in opt.param_groups:
        g["lr"] = lr * scale
