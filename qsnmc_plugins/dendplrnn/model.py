"""The qsnmc model ``dendplrnn``.

Fit (on ``TrainingData`` only), in named steps:
1. ``_prepare``: recording -> network grid of ``model_step_s`` (1 ms; current block-averaged,
   voltage max-pooled and clipped at ``clip_mV``, both standardised; see :mod:`preprocessing`).
   The network's inputs are the current and its causal low-pass filtrates (``input_taus_s``;
   :mod:`qsnmc_plugins.hazard.inputs`, as in ``gru``). ``train.time_split``: the last
   ``heldout_fraction`` of every stimulus' training window is held out, with several stimuli too
   (as in ``gru``); each stimulus' fit part is a sequence of its own (:mod:`sequences`).
2. ``_train_members``: the ``members`` networks (seeds ``1000 * seed + k``; sparse teacher
   forcing interval tau, latent units M and bases B per member, tau 0 meaning none after the
   burn-in) are trained by BPTT on the voltage (weighted MSE) jointly with a Bernoulli spike
   hazard read from the latent state (binary cross-entropy against the fraction of repetitions
   spiking per step; Kramer et al. 2022). Every network keeps the checkpoint (of its weights'
   moving average) with the highest held-out P.
3. ``compare_predictors`` (:mod:`qsnmc_plugins.hazard.predictors`): each member alone, the
   ensemble of all (mean voltage and mean hazard of their free runs, combined before spike
   detection) and the ensembles of the best members; each with its best readout, the hazard's
   peak-picking (:mod:`qsnmc_plugins.hazard.readout`) or a voltage threshold and time shift. The
   one with the highest held-out P is kept: tau, the members and the readout are all chosen on
   held-out data.

Predict: for a protocol seen in training, teacher-force the last ``warmup_s`` of the training
window (median over repetitions), then free-run through the window on the current alone; an
unseen protocol is free-run from rest. A diverging free run raises :class:`FreeRunDiverged`.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from qsnmc import (Fold, Stimulus, TrainingData, bar, candidates_record, fit_record, held_out_record,
                   samples_per_step, settings_record)

from qsnmc_plugins.dendplrnn.freerun import FreeRunDiverged, NetworkParams
from qsnmc_plugins.dendplrnn.heldout import HeldOutRuns, SpikeReadout, mean_run
from qsnmc_plugins.dendplrnn.preprocessing import Scaling
from qsnmc_plugins.dendplrnn.settings import DendPLRNNSettings
from qsnmc_plugins.hazard.inputs import input_columns
from qsnmc_plugins.hazard.members import member_curves, member_seed
from qsnmc_plugins.hazard.predictors import EnsembleModel
from qsnmc_plugins.hazard.targets import spike_fraction
from qsnmc_plugins.hazard.torch_setup import configure_torch
from qsnmc_plugins.hazard.voltage import VoltageScaling, spike_weights
from qsnmc_plugins.hazard.windows import StimulusSequence

#: a spike this close below a step's start (in steps) counts in that step (spike times on the sample grid)
EDGE_TOLERANCE = 1e-9


class DendPLRNNModel(EnsembleModel):
    """Dendritic PLRNN of the voltage and spike hazard driven by the current; deterministic for a seed."""

    name = "dendplrnn"
    description = ("dendritic PLRNN (Brenner 2022): sparse teacher forcing on the voltage plus a spike "
                   "hazard, ensembled, chosen on held-out data")
    Settings = DendPLRNNSettings
    typical_fit_s = 240  # s at budget 1, one core, on the embedded cell: orders a run's jobs

    def __init__(self, seed: int = 0, budget: float = 1.0, **overrides: Any) -> None:
        super().__init__(seed, budget, **overrides)
        self.members: list[NetworkParams] = []
        self.scaling: Scaling | None = None
        self.readout: SpikeReadout | None = None
        #: every predictor compared on the held-out part: name -> (members, readout)
        self.predictors: dict[str, tuple[list[NetworkParams], SpikeReadout]] = {}
        self.input_sd: np.ndarray = np.ones(1 + len(self.settings.input_taus_s))
        self._train: TrainingData | None = None
        self._kernels: dict = {}

    # ------------------------------------------------------------------ fitting
    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Train the members, choose checkpoints, predictor and readout on held-out data; the fit record."""
        t_start, c_start = time.perf_counter(), time.process_time()
        device, self._kernels = configure_torch(self.seed)
        self._train = train
        fold = train.time_split(self.settings.heldout_fraction)
        sequences, held = self._prepare(train, fold)
        config, states = self._train_members(sequences, held, device)
        predictors, chosen = self.choose_predictor([NetworkParams.from_module(st.net) for st in states],
                                                   held.best_readout)
        if not math.isfinite(chosen.held_out_p):
            raise FreeRunDiverged("every network's held-out free run diverged")
        self.members, self.readout = self.predictors[chosen.name]
        validation = held.scorer.validation(held.predictions(held.outputs(self.members), self.readout))
        return fit_record(
            settings=settings_record(self.settings),
            fitted={"chosen_predictor": chosen.name, "readout": self.readout.as_record(),
                    "params": [p.as_record() for p in self.members], "scaling": self.scaling.as_record(),
                    "input_sd": self.input_sd.tolist()},
            held_out=held_out_record(validation, fold.label),
            candidates=candidates_record([p.candidate() for p in predictors]),
            curves=_curves(states),
            details=self._details(config, states, device, t_start, c_start))

    def _prepare(self, train: TrainingData, fold: Fold) -> tuple[list[StimulusSequence], HeldOutRuns]:
        """Scaling and input SDs (fit part), each stimulus' training sequence, the held-out free runs."""
        s = self.settings
        factor = samples_per_step(train.dt_s, s.model_step_s)
        dt = factor * train.dt_s
        self.scaling = _scaling(fold.fit, factor, s.clip_mV)
        raw = {q.name: input_columns(self.scaling.current(q.current_pA), dt, s.input_taus_s) for q in train.stimuli}
        fit_rows = [raw[q.name][int(round(q.window_s[0] / dt)):int(round(q.window_s[1] / dt))] for q in fold.fit.stimuli]
        self.input_sd = np.concatenate(fit_rows).std(axis=0) + 1e-12  # each input channel to unit SD
        inputs = {k: (x / self.input_sd).astype(np.float32) for k, x in raw.items()}
        sequences, warm = [], {}
        n_warm = int(round(s.warmup_s / dt))
        for q in fold.fit.stimuli:
            v = self.scaling.voltage(q.voltage_mV)
            k0 = int(round(q.window_s[0] / dt))
            n = min(v.shape[1], inputs[q.name].shape[0] - k0)
            v = v[:, :n]
            spikes = [np.asarray(t) for t in q.spike_times_s]
            sequences.append(StimulusSequence(
                q.name, inputs[q.name][k0:k0 + n], spike_fraction(spikes, n, dt, q.window_s[0], EDGE_TOLERANCE), 0, n,
                v, spike_weights(spikes, n, dt, q.window_s[0], s.spike_share)))
            warm[q.name] = np.median(v, axis=0)[-n_warm:]
        return sequences, HeldOutRuns(fold.heldout, inputs, warm, self.scaling, dt, train.delta_s, s)

    def _train_members(self, sequences: list[StimulusSequence], held: HeldOutRuns, device) -> tuple[Any, list]:
        """Each member trained from its seed, at its best checkpoint (held-out P of its best readout)."""
        from qsnmc_plugins.dendplrnn.training import TrainConfig, new_state, train

        s = self.settings

        def evaluate(net) -> float:  # checkpoint score: held-out P of the best hazard or voltage-threshold readout
            return held.best_readout([NetworkParams.from_module(net)], shifts_s=(0.0,))[1]

        steps = max(s.min_steps, int(round(s.steps * self.budget)))
        eval_every = max(10, min(s.eval_every, steps // 4))
        longest = max(q.n_target_bins for q in sequences)  # short recordings: windows as long as the longest fit part
        base_rate = float(np.mean(np.concatenate([q.target for q in sequences])))
        config = TrainConfig(n_in=sequences[0].inputs.shape[1], seq_len=min(s.seq_len, max(10, longest - s.burn_in)),
                             burn_in=s.burn_in, batch_size=s.batch_size, lr=s.lr, adam_beta2=s.adam_beta2,
                             ema_decay=s.ema_decay, spike_loss_weight=s.spike_loss_weight, base_rate=base_rate)
        states = []
        with bar(steps * len(s.members), "dendplrnn fit") as pb:
            for k, (tau, m, b) in enumerate(s.members):
                st = new_state(replace(config, tau=tau, m=m, n_bases=b), member_seed(self.seed, k), device)
                train(st, sequences, steps, evaluate, eval_every, device, pb, lr_end_factor=s.lr_end_factor,
                      rollback_drop=s.rollback_drop)
                if st.best.state is not None:
                    st.net.load_state_dict(st.best.state)
                states.append(st)
        return config, states

    def _details(self, config, states: list, device, t_start: float, c_start: float) -> dict[str, Any]:
        return {"members": [{"seed": member_seed(self.seed, k), "tau_steps": st.config.tau,
                             "latent_dim_M": st.config.m, "n_bases_B": st.config.n_bases,
                             "best_iteration": st.best.step, "heldout_P_at_best_checkpoint": st.best.score,
                             "restarts": st.restarts, "rollbacks": [{"iteration": i, "held_out_P": p, "back_to": b}
                                                                     for i, p, b in st.rollbacks],
                             "samples_per_s": st.samples_per_s} for k, st in enumerate(states)],
                "training": {"seq_len_steps": config.seq_len, "iterations_per_member": len(states[0].losses),
                             "base_rate": config.base_rate, "grad_clip": config.grad_clip,
                             "loss": "weighted voltage MSE (sparse teacher forcing) + hazard BCE vs fraction of "
                                     "repetitions spiking per step",
                             "samples_per_s": float(np.mean([st.samples_per_s for st in states]))},
                "dt_model_s": self.scaling.factor * self._train.dt_s, "device": str(device),
                "torch_kernels": self._kernels,
                "fit_time_s": time.perf_counter() - t_start, "fit_cpu_s": time.process_time() - c_start}

    # ------------------------------------------------------------------ prediction
    def _predict(self, stimulus: Stimulus, members: list[NetworkParams], readout: SpikeReadout) -> np.ndarray:
        sc = self.scaling
        dt = sc.factor * stimulus.dt_s
        s = input_columns(sc.current(stimulus.current_pA), dt, self.settings.input_taus_s) / self.input_sd
        s = s.astype(np.float32).astype(np.float64)  # as the training inputs
        stop = min(s.shape[0], int(math.ceil(stimulus.window_s[1] / dt)) + 1)
        tr = self._train.stimulus(stimulus.name) if self._train is not None else None
        if tr is not None and tr.window_s[1] <= stimulus.window_s[1]:
            # same protocol: teacher-force the end of the recorded training window, then free-run
            x_med = np.median(sc.voltage(tr.voltage_mV), axis=0)
            start_k = int(round(tr.window_s[0] / dt))
            warm = min(int(round(self.settings.warmup_s / dt)), x_med.shape[0])
            lo = start_k + x_med.shape[0] - warm
            obs = np.zeros((stop - lo, 1))
            obs[:warm, 0] = x_med[-warm:]
            forcing = np.arange(stop - lo) < warm
        else:
            # unseen protocol: start from rest (the training mean voltage, hidden units at 0)
            lo, obs, forcing = 0, np.zeros((stop, 1)), None
        v, h = mean_run(members, s[lo:stop], obs, forcing, sc)  # FreeRunDiverged propagates: a failed row
        return readout.spikes(v, h, lo * dt, dt, stimulus.window_s)


def _scaling(fit: TrainingData, factor: int, clip_mV: float) -> Scaling:
    """Standardisation of the voltage and current over the fit parts of every stimulus."""
    v = VoltageScaling.fit([s.voltage_mV for s in fit.stimuli], factor, clip_mV)
    i = np.concatenate([np.asarray(s.window_current_pA) for s in fit.stimuli])
    return Scaling(v.factor, v.clip_mV, v.v_mean_mV, v.v_sd_mV, float(i.mean()), float(i.std()) or 1.0)


def _curves(states: list) -> dict[str, dict]:
    """Per member: training loss per iteration, and held-out P at each checkpoint."""
    out = {}
    for k, st in enumerate(states):
        it, p = zip(*st.checkpoint_scores) if st.checkpoint_scores else ((), ())
        out.update(member_curves(k, st.losses, "iteration", "training loss", it,
                                 {"held-out P": (p, "held-out P (checkpoint readout)")}))
    return out
