"""The qsnmc model ``gru``: a recurrent network's spike hazard, ensembled, read out by peak picking.

Fit (on ``TrainingData`` only), in named steps:
1. ``_prepare``: bins of ``model_step_s`` (1 ms): the injected current (block mean, standardised) and its
   causal low-pass filtrates (``input_taus_s``; :func:`qsnmc.lowpass_bank`, started at steady
   state) are the inputs; the target is the fraction of repetitions spiking in each bin (with
   ``voltage_weight``, also the recorded voltage, max-pooled per bin, clipped at ``clip_mV`` and
   standardised: :mod:`qsnmc_plugins.hazard.voltage`).
   ``train.time_split``: the last ``heldout_fraction`` of every stimulus' training window is held
   out; each stimulus is a sequence of its own (windows never join two stimuli). With several
   stimuli the time split is used too: folds multiply the training cost (``benchmarks/README.md``,
   "Selection by nested validation").
2. ``_train_members``: ``members`` networks (seeds ``1000 * seed + k``) are trained by binary
   cross-entropy on windows of the fit part (:mod:`training`; plus the weighted voltage MSE with
   ``voltage_weight``, the dendPLRNN cell's voltage unit forced by a random repetition's recording
   every ``teacher_forcing_bins``), ``steps`` steps each at budget 1,
   with an exponential moving average of the weights (``ema_decay`` per step); every
   ``eval_every`` steps the average is scored on the held-out part (Gamma/R with its best
   readout) and the best evaluated average is kept; a score ``rollback_drop`` below the best so
   far sends training back to the best checkpoint's state at half the learning rate, so that a
   collapse mid-training does not decide what is kept.
3. ``compare_predictors`` (:mod:`qsnmc_plugins.hazard.predictors`): each member alone and the
   ensembles of the best members (mean hazard), each with the readout (smoothing, a fixed or
   count-matched threshold, refractory gap; :mod:`qsnmc_plugins.hazard.readout`) chosen on the
   held-out part. ``predictor``: ``"ensemble"`` keeps the average of every member (two of 400
   steps by default, one network of 800 steps' cost; chosen on a probe inside the training data,
   ``benchmarks/README.md``, "gru: two networks averaged"); ``"best"``, the predictor of highest
   held-out Gamma/R.

Predict: the hazard over the window, computed in chunks of ``seq_bins`` each after a burn-in of
``predict_burn_bins`` on the current before it (longer than training's, so that the state's slow
part settles too), then the readout: one deterministic train.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from qsnmc import (Fold, Stimulus, TrainingData, TrainingStimulus, bar, candidates_record, fit_record,
                   held_out_record, samples_per_step, settings_record)

from qsnmc_plugins.gru.inputs import InputScaling, window_bins
from qsnmc_plugins.gru.settings import GRUSettings
from qsnmc_plugins.hazard.heldout import HeldOutScorer
from qsnmc_plugins.hazard.members import member_curves, member_seed
from qsnmc_plugins.hazard.predictors import EnsembleModel
from qsnmc_plugins.hazard.readout import Readout, ReadoutSettings, choose_readout, spikes_from_hazard
from qsnmc_plugins.hazard.targets import spike_fraction
from qsnmc_plugins.hazard.torch_setup import configure_torch
from qsnmc_plugins.hazard.voltage import VoltageScaling, spike_weights
from qsnmc_plugins.hazard.windows import StimulusSequence


class GRUModel(EnsembleModel):
    name = "gru"
    description = ("GRU spike hazard (LSTM, dendPLRNN or a non-recurrent control as options) on the current and its "
                   "filtrates, weight-averaged, peak-picking readout")
    Settings = GRUSettings
    typical_fit_s = 218  # s at budget 1, one core, on the embedded cell: orders a run's jobs
    param_grid = {"cell": ["gru", "lstm", "ln", "dendplrnn"],
                  "input_taus_s": [[0.02, 0.1, 0.5], [0.02, 0.1, 0.5, 5.0, 20.0]]}

    def __init__(self, seed: int = 0, budget: float = 1.0, **overrides: Any) -> None:
        super().__init__(seed, budget, **overrides)
        self.scaling: InputScaling | None = None
        self.nets: list = []
        self.readout: Readout | None = None
        #: every predictor compared on the held-out part: name -> (networks, readout)
        self.predictors: dict[str, tuple[list, Readout]] = {}
        self._device = None
        self._kernels: dict = {}
        self._seq_bins = self.settings.seq_bins

    # ------------------------------------------------------------------ fitting
    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Train the members, choose checkpoints, predictor and readout on held-out data; the fit record."""
        return self._fit_fold(train.time_split(self.settings.heldout_fraction), train.delta_s)

    def _fit_fold(self, fold: Fold, delta_s: float) -> dict[str, Any]:
        """:meth:`fit` on one fold: train on ``fold.fit``, choose on ``fold.heldout``."""
        t_start = time.perf_counter()
        self._device, self._kernels = configure_torch(self.seed)
        self.scaling, sequences, held = _prepare(fold, delta_s, self.settings)
        config = self._train_config(held.seq_bins)
        self._seq_bins = config.seq_bins
        members = self._train_members(sequences, config, held)
        predictors, chosen = self.choose_predictor([m.net for m in members], held.best_readout,
                                                   self.settings.predictor)
        self.nets, self.readout = self.predictors[chosen.name]
        validation = held.scorer.validation(held.spikes(self.nets, self.readout))
        return fit_record(
            settings=settings_record(self.settings),
            fitted={"chosen_predictor": chosen.name, "readout": self.readout.as_record(),
                    "member_seeds": [member_seed(self.seed, k) for k in range(len(members))],
                    "best_steps": [m.best.step for m in members], "input_scaling": self.scaling.as_record()},
            held_out=held_out_record(validation, fold.label),
            candidates=candidates_record([p.candidate() for p in predictors]),
            curves=_curves(members),
            details=self._details(config, members, t_start))

    def _train_config(self, seq_bins: int) -> GRUSettings:
        """The settings with this budget's steps, windows of ``seq_bins`` (no longer than the longest
        fit part) and at least 8 held-out evaluations (at least 5 steps apart)."""
        s = self.settings
        steps = max(s.min_steps, int(round(s.steps * self.budget)))
        return replace(s, steps=steps, seq_bins=seq_bins, eval_every=max(5, min(s.eval_every, steps // 8)))

    def _train_members(self, sequences: list[StimulusSequence], config, held: "_HeldOut") -> list:
        from qsnmc_plugins.gru.training import train_network

        base_rate = float(np.mean(np.concatenate([q.target[q.target_start:q.target_stop] for q in sequences])))
        with bar(config.steps * self.settings.members, "gru fit") as pb:
            return [train_network(sequences, config, member_seed(self.seed, k), base_rate, held.evaluate,
                                  self._device, pb) for k in range(self.settings.members)]

    def _details(self, config, members: list, t_start: float) -> dict[str, Any]:
        return {"architecture": {"cell": config.cell, "hidden_units": config.hidden, "layers": 1,
                                 "readout": "linear -> sigmoid hazard", "ensemble_members": len(members)},
                "channels": ["current"] + [f"lowpass {t * 1e3:g} ms" for t in self.scaling.taus_s],
                "training": {**config.as_record(), "optimiser": "Adam, cosine decay to 2 % of lr, grad-norm clip",
                             "loss": "binary cross-entropy vs fraction of repetitions spiking per bin" + (
                                 f" + {config.voltage_weight:g} x base-rate cross-entropy x weighted MSE of the "
                                 "standardised voltage" + (f", its unit forced every {config.teacher_forcing_bins} bins"
                                                           if config.teacher_forcing_bins else "")
                                 if config.voltage_weight > 0 else "")},
                "members": [{"best_step": m.best.step, "heldout_gamma_over_r_at_best_step": m.best.score,
                             "recoveries": m.recoveries, "rollbacks": m.rollbacks} for m in members],
                "checkpoint_rule": "per member, the evaluated step with the highest held-out Gamma/R (best readout)",
                "device": str(self._device), "torch_kernels": self._kernels,
                "samples_per_s": float(np.mean([m.samples_per_s for m in members])),
                "fit_time_s": time.perf_counter() - t_start}

    # ------------------------------------------------------------------ prediction
    def _predict(self, stimulus: Stimulus, nets: list, readout: Readout) -> np.ndarray:
        from qsnmc_plugins.gru.network import ensemble_hazard

        sc = self.scaling
        x = sc.inputs(stimulus.current_pA, stimulus.dt_s)
        a, b = window_bins(stimulus.window_s, sc.bin_s)
        hz = ensemble_hazard(nets, x, a, b, self._seq_bins, self.settings.predict_burn_bins, self._device)
        if not np.all(np.isfinite(hz)):
            raise FloatingPointError("the network's hazard is not finite: no spike times predicted")
        return spikes_from_hazard(hz, a * sc.bin_s, sc.bin_s, readout, stimulus.window_s)


def _prepare(fold: Fold, delta_s: float, s: GRUSettings) -> tuple[InputScaling, list[StimulusSequence], "_HeldOut"]:
    """The input scaling (fit on the fit part), the training sequences and the held-out windows."""
    dt_s = fold.fit.dt_s
    sc = InputScaling.fit([np.asarray(q.current_pA)[: q.window_slice.stop] for q in fold.fit.stimuli],
                          dt_s, s.model_step_s, s.input_taus_s)
    factor = samples_per_step(dt_s, s.model_step_s)
    vsc = (VoltageScaling.fit([q.voltage_mV for q in fold.fit.stimuli], factor, s.clip_mV)
           if s.voltage_weight > 0 else None)
    sequences = []
    for q in fold.fit.stimuli:
        x = sc.inputs(q.current_pA, dt_s)
        a, b = window_bins(q.window_s, sc.bin_s)
        voltage = _voltage_target(q, vsc, a, x.shape[0], s.spike_share) if vsc is not None else (None, None)
        sequences.append(StimulusSequence(q.name, x, spike_fraction(q.spike_times_s, x.shape[0], sc.bin_s), a,
                                          min(b, x.shape[0]), *voltage))
    longest = max(q.n_target_bins for q in sequences)  # short recordings: windows as long as the longest
    return sc, sequences, _HeldOut(fold, delta_s, sc, min(s.seq_bins, longest), s.predict_burn_bins, s)


def _voltage_target(q: TrainingStimulus, vsc: VoltageScaling, first_bin: int, n_bins: int,
                    spike_share: float) -> tuple[np.ndarray, np.ndarray]:
    """A stimulus' voltage target on the protocol's bins (n_reps, n_bins), bins outside its recorded
    window repeating the nearest recorded one, and its loss weights (0 outside the recording)."""
    v = vsc.voltage(q.voltage_mV)
    n = min(v.shape[1], n_bins - first_bin)
    full = np.empty((v.shape[0], n_bins), np.float32)
    full[:, first_bin:first_bin + n] = v[:, :n]
    full[:, :first_bin] = v[:, :1]
    full[:, first_bin + n:] = v[:, n - 1:n]
    weights = np.zeros_like(full)
    weights[:, first_bin:first_bin + n] = spike_weights([np.asarray(t) for t in q.spike_times_s], n,
                                                        vsc.factor * q.dt_s, q.window_s[0], spike_share)
    return full, weights


class _HeldOut:
    """The held-out windows of a time split on the bin grid: hazards, readouts and scores of networks."""

    def __init__(self, fold: Fold, delta_s: float, sc: InputScaling, seq_bins: int, burn_bins: int,
                 grid: ReadoutSettings) -> None:
        self.scorer = HeldOutScorer(fold.heldout, delta_s)
        self.bin_s, self.seq_bins, self.burn_bins, self.grid = sc.bin_s, seq_bins, burn_bins, grid
        self.inputs, self.bins, self.t0, self.window, self.target = {}, {}, {}, {}, {}
        for h in fold.heldout:
            a, b = window_bins(h.stimulus.window_s, sc.bin_s)
            self.inputs[h.name] = sc.inputs(h.stimulus.current_pA, fold.fit.dt_s)
            self.bins[h.name], self.t0[h.name], self.window[h.name] = (a, b), a * sc.bin_s, h.stimulus.window_s
            self.target[h.name] = spike_fraction(h.spike_times_s, b, sc.bin_s)[a:b]
        self.recorded_count = float(sum(np.mean([len(t) for t in h.spike_times_s]) for h in fold.heldout))

    def hazards(self, nets: list) -> dict[str, np.ndarray]:
        from qsnmc_plugins.gru.network import ensemble_hazard

        return {k: ensemble_hazard(nets, self.inputs[k], *self.bins[k], self.seq_bins, self.burn_bins,
                                   nets[0].spike.weight.device) for k in self.bins}

    def best_readout(self, nets: list, hazards: dict[str, np.ndarray] | None = None) -> tuple[Readout, float]:
        hz = self.hazards(nets) if hazards is None else hazards
        return choose_readout(hz, self.t0, self.bin_s, self.scorer, self.window, self.grid)

    def spikes(self, nets: list, readout: Readout, hazards: dict[str, np.ndarray] | None = None) -> dict:
        hz = self.hazards(nets) if hazards is None else hazards
        return {k: spikes_from_hazard(hz[k], self.t0[k], self.bin_s, readout, self.window[k]) for k in hz}

    def evaluate(self, net) -> dict[str, float]:
        """A checkpoint's held-out Gamma/R (best readout), cross-entropy and predicted / recorded count."""
        return self.evaluate_with_readout(net)[0]

    def evaluate_with_readout(self, net) -> tuple[dict[str, float], Readout]:
        """:meth:`evaluate`'s scores and the readout they were scored with (chosen here)."""
        hz = self.hazards([net])
        r, p = self.best_readout([net], hz)
        n_pred = sum(t.size for t in self.spikes([net], r, hz).values())
        return {"gamma_over_r": p, "bce": self.cross_entropy(hz),
                "rate_ratio": n_pred / max(1.0, self.recorded_count)}, r

    def cross_entropy(self, hazards: dict[str, np.ndarray]) -> float:
        """Mean binary cross-entropy per bin of hazards against the fraction of repetitions spiking."""
        return float(np.mean(np.concatenate([_bce(hazards[k], self.target[k]) for k in hazards])))


def _bce(hazard: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Binary cross-entropy per bin of a hazard against a target fraction."""
    h = np.clip(hazard, 1e-7, 1 - 1e-7)
    return -(target * np.log(h) + (1 - target) * np.log(1 - h))


def _curves(members: list) -> dict[str, dict]:
    """Per member: training loss per step, held-out Gamma/R and cross-entropy of the (averaged) checkpoints."""
    out = {}
    for k, m in enumerate(members):
        evals = m.ema_curve or m.heldout_curve
        out.update(member_curves(k, m.loss_curve, "step", "training BCE", [e["step"] for e in evals], {
            "held-out P": ([e["gamma_over_r"] for e in evals], "held-out Gamma/R"),
            "held-out BCE": ([e["bce"] for e in evals], "held-out BCE")}))
    return out
