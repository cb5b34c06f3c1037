"""Training one network on the spike likelihood, with checkpoints chosen on held-out data.

Binary cross-entropy between the network's hazard and the fraction of repetitions spiking
in each bin (a Bernoulli likelihood per bin), over windows drawn from the fit part of every
stimulus (burn-in bins excluded from the loss); Adam (learning rate: :func:`_set_lr`) with
gradient clipping. Every ``eval_every`` steps the network (with ``ema_decay``: the moving average
of its weights, and the raw weights only after the last step) is scored on the held-out part
(Gamma/R of its best readout) and the best checkpoint is kept, or with ``keep="last"`` the weights
after the last step. A held-out score ``rollback_drop`` below the best: :meth:`_Run._roll_back`.
A non-finite loss or gradient: :meth:`_Run._recover`.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from qsnmc_plugins.gru.batching import make_batch, voltage_batch
from qsnmc_plugins.gru.network import SpikeHazardNet
from qsnmc_plugins.gru.settings import GRUSettings
from qsnmc_plugins.hazard.checkpoints import BestCheckpoint, averaging_decay
from qsnmc_plugins.hazard.recovery import Snapshots, TrainingDiverged
from qsnmc_plugins.hazard.targets import base_rate_entropy
from qsnmc_plugins.hazard.windows import StimulusSequence, Window, sample_windows


#: one network's training plan: the gru's settings, with ``steps``, ``seq_bins`` and ``eval_every``
#: as the model sets them for its budget and data (bins are ``model_step_s`` wide)
TrainConfig = GRUSettings


@dataclass
class TrainResult:
    """A trained network (at its best checkpoint) and its history."""

    net: SpikeHazardNet
    best: BestCheckpoint  #: the kept checkpoint: step, held-out Gamma/R, state
    loss_curve: list[float] = field(default_factory=list)
    heldout_curve: list[dict[str, float]] = field(default_factory=list)
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    samples_per_s: float = 0.0
    #: held-out scores of the weight average at each evaluation (empty without ``ema_decay``)
    ema_curve: list[dict[str, float]] = field(default_factory=list)
    #: returns to the best checkpoint's state after a held-out collapse (``rollback_drop``)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)


def train_network(sequences: list[StimulusSequence], config: TrainConfig, seed: int, base_rate: float,
                  evaluate: Callable[[SpikeHazardNet], dict[str, float]], device: torch.device,
                  progress=None, fault: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> TrainResult:
    """Train one network from seed ``seed`` for ``config.steps`` steps; the network at its kept checkpoint.

    Args:
        sequences: the fit part of every stimulus, one sequence each.
        evaluate: net -> ``{"gamma_over_r": held-out P, ...}`` (called in eval mode, no grad);
            the checkpoint with the highest ``gamma_over_r`` is kept.
        base_rate: mean spike probability per bin (initial output bias).
        progress: optional progress bar (``update(1)`` per step).
        fault: test hook, (step, loss) -> loss, e.g. to inject a NaN.
    """
    if config.keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', got {config.keep!r}")
    run = _Run(sequences, config, seed, base_rate, device)
    seconds, samples = 0.0, 0
    while run.step < config.steps:
        t = time.perf_counter()
        loss, n = run.optimiser_step(fault)
        if loss is None:
            continue
        seconds += time.perf_counter() - t
        samples += n
        if progress is not None:
            progress.update(1)
        if run.step % config.eval_every == 0 or run.step == config.steps:
            run.checkpoint(evaluate)
    run.net.load_state_dict(run.result.best.state)
    run.net.eval()
    run.result.samples_per_s = samples / seconds if seconds > 0 else 0.0
    return run.result


class _Run:
    """One network's training in progress: network, optimiser, weight average and their snapshots."""

    def __init__(self, sequences: list[StimulusSequence], config: TrainConfig, seed: int, base_rate: float,
                 device: torch.device) -> None:
        torch.manual_seed(seed)
        self.sequences, self.config, self.seed, self.device = sequences, config, seed, device
        self.rng = np.random.default_rng(seed)
        self.net = SpikeHazardNet(sequences[0].inputs.shape[1], config.hidden, config.cell, base_rate,
                                  voltage_head=config.voltage_weight > 0).to(device)
        self.base_entropy = base_rate_entropy(base_rate)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=(0.9, config.adam_beta2))
        self.lr_scale = 1.0
        self.step = 0
        _set_lr(self.opt, 0, config, self.lr_scale)
        self.result = TrainResult(self.net, BestCheckpoint(self.net.state_dict()))
        self.ema = copy.deepcopy(self.net) if config.ema_decay > 0 else None
        self.snapshots = Snapshots(self.net, self.opt, self.ema)

    def optimiser_step(self, fault) -> tuple[float | None, int]:
        """One step on a random batch: (its loss, samples), or (None, 0) after a recovery."""
        cfg, net = self.config, self.net
        net.train()
        picks = sample_windows(self.sequences, cfg.batch_size, cfg.seq_bins, self.rng)
        x, y = make_batch(self.sequences, picks, cfg.seq_bins, cfg.burn_bins)
        x = torch.from_numpy(x).to(self.device)
        y = torch.from_numpy(y).to(self.device)
        if cfg.voltage_weight > 0:
            loss = self._loss_with_voltage(x, y, picks)
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x)[:, cfg.burn_bins:], y)
        if fault is not None:
            loss = fault(self.step, loss)
        self.opt.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(loss))
        if finite:
            loss.backward()
            finite = bool(torch.isfinite(torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)))
        if not finite:
            self._recover()
            return None, 0
        self.opt.step()
        net.project()
        self.step += 1
        if self.ema is not None:
            d = averaging_decay(cfg.ema_decay, self.step)
            with torch.no_grad():
                torch._foreach_lerp_(list(self.ema.parameters()), list(net.parameters()), 1.0 - d)
        _set_lr(self.opt, self.step, cfg, self.lr_scale)
        self.result.loss_curve.append(float(loss.detach()))
        return self.result.loss_curve[-1], x.shape[0] * x.shape[1]

    def _loss_with_voltage(self, x: torch.Tensor, y: torch.Tensor, picks: list[Window]) -> torch.Tensor:
        """The hazard's cross-entropy plus ``voltage_weight`` times the weighted voltage MSE (scaled by
        the base rate's cross-entropy, so that the weight is relative to the hazard's reduced loss),
        with sparse teacher forcing of the voltage unit every ``teacher_forcing_bins`` bins."""
        cfg, b = self.config, self.config.burn_bins
        v, w = (torch.from_numpy(a).to(self.device) for a in
                voltage_batch(self.sequences, picks, cfg.seq_bins, b, self.rng))
        forcing = None
        if cfg.teacher_forcing_bins > 0:
            forcing = torch.arange(x.shape[1]) % cfg.teacher_forcing_bins == 0
        logits, v_pred = self.net.forward_with_voltage(x, v, forcing)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, b:], y)
        mse = ((v_pred[:, b:] - v[:, b:]) ** 2 * w).sum() / w.sum().clamp_min(1e-12)
        return bce + cfg.voltage_weight * self.base_entropy * mse

    def _recover(self) -> None:
        """Back to the last good checkpoint at half the learning rate, or :class:`TrainingDiverged`."""
        if len(self.result.recoveries) >= self.config.max_recoveries:
            raise TrainingDiverged(
                f"{self.config.cell} network (seed {self.seed}): non-finite loss at step {self.step} after "
                f"{len(self.result.recoveries)} restarts from the last good checkpoint at lower learning rates")
        good_step = self.snapshots.load(self.snapshots.good)
        self.lr_scale *= 0.5
        self.result.recoveries.append({"step": self.step, "restart_from_step": good_step, "lr_scale": self.lr_scale})
        self.step = good_step
        _set_lr(self.opt, self.step, self.config, self.lr_scale)

    def checkpoint(self, evaluate: Callable[[SpikeHazardNet], dict[str, float]]) -> None:
        """Score the network (its average, with one) on held-out data, keep the best, mark a good state."""
        cfg, net, ema, res = self.config, self.net, self.ema, self.result
        last = self.step == cfg.steps
        kept = ema if ema is not None else net
        if cfg.keep == "best" or last:
            if ema is None or last:  # with an average, the raw weights only at the end
                ev = _evaluated(net, evaluate, self.step)
                res.heldout_curve.append(ev)
            if ema is not None:
                ev = _evaluated(ema, evaluate, self.step)
                res.ema_curve.append(ev)
            if cfg.keep == "best" and not last and self.snapshots.collapsed(
                    ev["gamma_over_r"], res.best.score, cfg.rollback_drop, len(res.rollbacks), cfg.max_recoveries):
                self._roll_back(ev["gamma_over_r"])
                return
            best_before = res.best.score
            res.best.offer(self.step, ev["gamma_over_r"], kept, keep=cfg.keep == "last")
            if res.best.score > best_before:
                self.snapshots.at_best = self.snapshots.take(self.step)
        if all(bool(torch.isfinite(p).all()) for p in net.parameters()):
            self.snapshots.good = self.snapshots.take(self.step)

    def _roll_back(self, score: float) -> None:
        """Back to the state of the best checkpoint (raw and averaged weights, optimiser) at half the
        learning rate; the step count and schedule go on, so the fit's cost stays the same."""
        best_step = self.snapshots.load(self.snapshots.at_best)
        self.lr_scale *= 0.5
        self.result.rollbacks.append({"step": self.step, "held_out_gamma_over_r": score,
                                      "back_to_step": best_step, "lr_scale": self.lr_scale})
        _set_lr(self.opt, self.step, self.config, self.lr_scale)
        self.snapshots.good = self.snapshots.take(self.step)


def _evaluated(net: SpikeHazardNet, evaluate: Callable[[SpikeHazardNet], dict[str, float]], step: int) -> dict:
    net.eval()
    with torch.no_grad():
        return {"step": step, **evaluate(net)}


def _set_lr(opt, step: int, config: TrainConfig, scale: float) -> None:
    """Learning rate at ``step``: a linear warm-up over the first tenth of the steps, then cosine
    decay to 2 % of ``lr``; times ``scale`` (halved after each recovery)."""
    total = config.steps
    warm = max(1, total // 10)
    lo = config.lr * 0.02
    if step < warm:
        lr = config.lr * (step + 1) / warm
    else:
        lr = lo + 0.5 * (config.lr - lo) * (1 + math.cos(math.pi * min(step - warm, total - warm) / (total - warm)))
    for g in opt.param_groups:
        g["lr"] = lr * scale
