"""The qsnmc model ``dendplrnn``.

Fit (on ``TrainingData`` only):
1. Recording -> network grid: 1 ms steps (current block-averaged, voltage max-pooled and
   clipped at -20 mV, both standardised; see :mod:`preprocessing`). The network's inputs are
   the current and three causal low-pass filtrates of it (20, 100, 500 ms), started at the
   protocol's start.
2. ``train.time_split``: the last 20 % of every stimulus' training window is held out. Each
   stimulus' fit part is a sequence of its own (:mod:`sequences`): training windows never
   cross from one stimulus into another, and each starts with its own forced burn-in. With
   several stimuli the time split is used too (leave-one-stimulus-out folds would multiply
   the training cost by the number of stimuli).
3. ``MEMBERS`` networks (seeds ``1000 * seed + k``; sparse teacher forcing interval tau per
   member, 0 meaning none after the burn-in) are trained by BPTT on the voltage (weighted MSE)
   jointly with a Bernoulli spike hazard read from the latent state (binary cross-entropy
   against the fraction of repetitions spiking per step; Kramer et al. 2022). Every network
   keeps the checkpoint (of its weights' moving average) with the highest held-out P.
4. Predictors compared on the held-out part: each member alone, the ensemble of all (mean
   voltage and mean hazard of their free runs, combined before spike detection) and the
   ensembles of the best members; each with its best readout, the hazard's peak-picking
   (:mod:`qsnmc_plugins.hazard.readout`) or a voltage threshold and time shift. The one with the
   highest held-out P is kept: tau, the members and the readout are all chosen on held-out data.

Predict: for a protocol seen in training, teacher-force the last 1 s of the training window
(median over repetitions), then free-run through the window on the current alone; an unseen
protocol is free-run from rest. A diverging free run raises :class:`FreeRunDiverged`.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from qsnmc import Model, Stimulus, TrainingData, bar, score_heldout

from qsnmc_plugins.dendplrnn.freerun import FreeRunDiverged, NetworkParams
from qsnmc_plugins.dendplrnn.heldout import HeldOutRuns, SpikeReadout, mean_run
from qsnmc_plugins.dendplrnn.preprocessing import Scaling, block_max, filter_bank, spike_weights
from qsnmc_plugins.dendplrnn.sequences import StimulusSequence, spike_fraction

if TYPE_CHECKING:  # torch is imported only when a model fits
    from qsnmc_plugins.dendplrnn.training import TrainState

#: network step (s): 1 ms keeps every spike resolvable at +-2 ms and leaves about
#: 1-2 steps of upstroke after max-pooling (see preprocessing)
DT_MODEL_S = 1e-3
CLIP_MV = -20.0  #: voltage clipping level (mV)
HELDOUT_FRACTION = 0.2  #: end of each stimulus' training window held out for every choice
#: teacher-forced warm-up before a free run from recorded voltage (s)
WARMUP_S = 1.0
#: share of the voltage loss carried by spike steps: spikes fill ~1 % of the steps
SPIKE_SHARE = 0.5
#: weight of the spike hazard's cross-entropy (relative to that of the base rate) in the loss
SPIKE_LOSS_WEIGHT = 1.0
#: detection levels (mV) and time shifts (s) tried by the voltage readout
THRESHOLDS_MV = tuple(np.arange(-50.0, -24.9, 2.5).tolist())
SHIFTS_S = tuple(np.arange(0.0, 4.01e-3, 1e-3).tolist())
#: the ensemble's members: (sparse teacher forcing interval tau in steps, 0 = none; M; B)
MEMBERS = ((25, 24, 8), (0, 24, 8), (25, 24, 8), (0, 24, 8))
MEMBER_SEED_STRIDE = 1000  #: member k of model seed s trains from seed 1000 s + k
#: optimiser steps per member at budget 1
STEPS = 900
MIN_STEPS = 20
EVAL_EVERY = 100  #: optimiser steps between held-out checkpoints at budget 1
ADAM_BETA2 = 0.999  #: RAdam's second-moment decay
LR_END_FACTOR = 0.1  #: the learning rate decays geometrically to this fraction over a member's steps
#: time constants (s) of the low-pass filtrates of the current given as extra inputs
INPUT_TAUS_S: tuple[float, ...] = (0.02, 0.1, 0.5)


class DendPLRNNModel(Model):
    """Dendritic PLRNN of the voltage and spike hazard driven by the current; deterministic for a seed."""

    name = "dendplrnn"
    description = ("dendritic PLRNN (Brenner 2022): sparse teacher forcing on the voltage plus a spike "
                   "hazard, ensembled, chosen on held-out data")

    def __init__(self, seed: int = 0, budget: float = 1.0) -> None:
        super().__init__(seed, budget)
        self.members: list[NetworkParams] = []
        self.scaling: Scaling | None = None
        self.readout: SpikeReadout | None = None
        #: every predictor compared on the held-out part: name -> (member indices, readout, held-out P)
        self.predictors: dict[str, tuple[list[int], SpikeReadout, float]] = {}
        self.all_members: list[NetworkParams] = []
        self.input_taus_s: tuple[float, ...] = tuple(INPUT_TAUS_S)
        self.input_sd: np.ndarray = np.ones(1 + len(self.input_taus_s))
        self.member_specs: tuple = MEMBERS
        self._train: TrainingData | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Train the members, choose checkpoints, predictor and readout on held-out data; return the fit record."""
        from qsnmc_plugins.dendplrnn.training import TrainConfig, new_state, train as run_training

        t_start, c_start = time.perf_counter(), time.process_time()
        device = _configure_torch(self.seed)
        self._train = train
        fold = train.time_split(HELDOUT_FRACTION)
        factor = max(1, int(round(DT_MODEL_S / train.dt_s)))
        dt = factor * train.dt_s
        self.scaling = _scaling(fold.fit, factor)
        raw = {s.name: filter_bank(self.scaling.current(s.current_pA), dt, self.input_taus_s) for s in train.stimuli}
        fit_rows = [raw[s.name][int(round(s.window_s[0] / dt)):int(round(s.window_s[1] / dt))] for s in fold.fit.stimuli]
        self.input_sd = np.concatenate(fit_rows).std(axis=0) + 1e-12  # each input channel to unit SD
        inputs = {k: (x / self.input_sd).astype(np.float32) for k, x in raw.items()}
        sequences, warm = [], {}
        n_warm = int(round(WARMUP_S / dt))
        for s in fold.fit.stimuli:
            v = self.scaling.voltage(s.voltage_mV)
            k0 = int(round(s.window_s[0] / dt))
            n = min(v.shape[1], inputs[s.name].shape[0] - k0)
            v = v[:, :n]
            spikes = [np.asarray(t) for t in s.spike_times_s]
            sequences.append(StimulusSequence(
                s.name, v, inputs[s.name][k0:k0 + n], spike_fraction(spikes, n, dt, s.window_s[0]).astype(np.float32),
                spike_weights(spikes, n, dt, s.window_s[0], SPIKE_SHARE)))
            warm[s.name] = np.median(v, axis=0)[-n_warm:]
        base_rate = float(np.mean(np.concatenate([q.target for q in sequences])))
        held = HeldOutRuns(fold.heldout, inputs, warm, self.scaling, dt, train.delta_s, THRESHOLDS_MV, SHIFTS_S)

        def evaluate(net) -> float:  # checkpoint score: held-out P of the best hazard or voltage-threshold readout
            return held.best_readout([NetworkParams.from_module(net)], shifts_s=(0.0,))[1]

        steps = max(MIN_STEPS, int(round(STEPS * self.budget)))
        eval_every = max(10, min(EVAL_EVERY, steps // 4))
        longest = max(q.n_steps for q in sequences)
        base = TrainConfig(n_in=next(iter(inputs.values())).shape[1], spike_loss_weight=SPIKE_LOSS_WEIGHT,
                           base_rate=base_rate, adam_beta2=ADAM_BETA2)
        if base.burn_in + base.seq_len > longest:  # short recordings: windows as long as the longest fit part
            base = replace(base, seq_len=max(10, longest - base.burn_in))
        states = []
        with bar(steps * len(self.member_specs), "dendplrnn fit") as pb:
            for k, (tau, m, b) in enumerate(self.member_specs):
                st = new_state(replace(base, tau=tau, m=m, n_bases=b), MEMBER_SEED_STRIDE * self.seed + k, device)
                run_training(st, sequences, steps, evaluate, eval_every, device, pb, lr_end_factor=LR_END_FACTOR)
                if st.best_state is not None:
                    st.net.load_state_dict(st.best_state)
                states.append(st)
        self.all_members = [NetworkParams.from_module(st.net) for st in states]

        # predictors: single members, the ensemble, the best members' ensembles; each with its best readout
        candidates: dict[str, tuple[list[int], SpikeReadout, float]] = {}
        for k in range(len(states)):
            candidates[f"member {k}"] = ([k], *held.best_readout([self.all_members[k]]))
        ranked = sorted(range(len(states)), key=lambda k: -candidates[f"member {k}"][2])
        finite = [k for k in ranked if math.isfinite(candidates[f"member {k}"][2])]
        for n_best in range(2, len(finite) + 1):
            idx = sorted(finite[:n_best])
            name = "ensemble" if n_best == len(states) else f"ensemble of best {n_best}"
            candidates[name] = (idx, *held.best_readout([self.all_members[i] for i in idx]))
        chosen = max(candidates, key=lambda c: candidates[c][2])
        if not math.isfinite(candidates[chosen][2]):
            raise FreeRunDiverged("every network's held-out free run diverged")
        self.predictors = candidates
        idx, self.readout, chosen_p = candidates[chosen]
        self.members = [self.all_members[i] for i in idx]
        outs = held.outputs(self.members)
        preds = {k: self.readout.spikes(v, h, t0, dt, held.runs[k][4]) for k, (v, h, t0) in outs.items()}
        validation = score_heldout(preds, fold.heldout, train.delta_s)
        single = candidates["member 0"][2]
        return {
            "dt_model_s": dt,
            "members": [{"seed": MEMBER_SEED_STRIDE * self.seed + k, "tau_steps": st.config.tau, "latent_dim_M": st.config.m,
                         "n_bases_B": st.config.n_bases, "best_iteration": st.best_iteration,
                         "heldout_P_at_best_checkpoint": st.best_score, "restarts": st.restarts,
                         "checkpoint_scores": st.checkpoint_scores, "samples_per_s": st.samples_per_s,
                         "loss_curve": st.losses[:: max(1, len(st.losses) // 100)]}
                        for k, st in enumerate(states)],
            "training": {"seq_len_steps": base.seq_len, "burn_in_steps": base.burn_in, "batch_size": base.batch_size,
                         "lr": base.lr, "grad_clip": base.grad_clip, "iterations_per_member": steps,
                         "ema_decay": base.ema_decay, "spike_loss_share": SPIKE_SHARE,
                         "spike_loss_weight": SPIKE_LOSS_WEIGHT, "base_rate": base_rate,
                         "loss": "weighted voltage MSE (sparse teacher forcing) + hazard BCE vs fraction of "
                                 "repetitions spiking per step", "device": str(device),
                         "samples_per_s": float(np.mean([st.samples_per_s for st in states]))},
            "heldout": fold.label,
            "heldout_P_by_predictor": {c: v[2] for c, v in candidates.items()},
            "readout_by_predictor": {c: v[1].as_record() for c, v in candidates.items()},
            "single_network_heldout_P": single,
            "ensemble_heldout_P": candidates["ensemble"][2] if "ensemble" in candidates else None,
            "chosen_predictor": chosen,
            "chosen_because": "highest held-out P (each predictor with its own best readout)",
            "readout": self.readout.as_record(),
            "heldout_gamma_over_R": chosen_p,
            "validation": validation.to_dict(),
            "held_out_per_stimulus": validation.per_stimulus(),
            "input_filter_taus_s": list(self.input_taus_s),
            "input_sd": self.input_sd.tolist(),
            "clip_mV": CLIP_MV,
            "scaling": self.scaling.as_record(),
            "loss_curve": states[0].losses,
            "fit_time_s": time.perf_counter() - t_start,
            "fit_cpu_s": time.process_time() - c_start,
            "params": [p.as_record() for p in self.members],
        }

    # ------------------------------------------------------------------ prediction
    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) inside the window from the chosen predictor (one deterministic train)."""
        if not self.members or self.scaling is None or self.readout is None:
            raise RuntimeError("predict() before fit()")
        return self._predict(stimulus, self.members, self.readout)

    def predict_with(self, stimulus: Stimulus, predictor: str) -> np.ndarray:
        """Spike times (s) from one of the predictors compared in the fit (``"member 0"``, ``"ensemble"``, ...)."""
        idx, readout, _ = self.predictors[predictor]
        return self._predict(stimulus, [self.all_members[i] for i in idx], readout)

    def _predict(self, stimulus: Stimulus, members: list[NetworkParams], readout: SpikeReadout) -> np.ndarray:
        sc = self.scaling
        dt = sc.factor * stimulus.dt_s
        s = self._inputs(sc.current(stimulus.current_pA), dt).astype(np.float64)
        stop = min(s.shape[0], int(math.ceil(stimulus.window_s[1] / dt)) + 1)
        tr = self._train.stimulus(stimulus.name) if self._train is not None else None
        if tr is not None and tr.window_s[1] <= stimulus.window_s[1]:
            # same protocol: teacher-force the end of the recorded training window, then free-run
            x_med = np.median(sc.voltage(tr.voltage_mV), axis=0)
            start_k = int(round(tr.window_s[0] / dt))
            warm = min(int(round(WARMUP_S / dt)), x_med.shape[0])
            lo = start_k + x_med.shape[0] - warm
            obs = np.zeros((stop - lo, 1))
            obs[:warm, 0] = x_med[-warm:]
            forcing = np.arange(stop - lo) < warm
        else:
            # unseen protocol: start from rest (the training mean voltage, hidden units at 0)
            lo, obs, forcing = 0, np.zeros((stop, 1)), None
        v, h = mean_run(members, s[lo:stop], obs, forcing, sc)  # FreeRunDiverged propagates: a failed row
        return readout.spikes(v, h, lo * dt, dt, stimulus.window_s)

    def _inputs(self, current: np.ndarray, dt_model_s: float) -> np.ndarray:
        """Standardised current (T,) on the network grid -> the network's inputs (T, n_in), float32."""
        return (filter_bank(current, dt_model_s, self.input_taus_s) / self.input_sd).astype(np.float32)


def _scaling(fit: TrainingData, factor: int) -> Scaling:
    """Standardisation of the voltage and current over the fit parts of every stimulus."""
    v = np.concatenate([np.minimum(block_max(np.asarray(s.voltage_mV), factor), CLIP_MV).ravel() for s in fit.stimuli])
    i = np.concatenate([np.asarray(s.window_current_pA) for s in fit.stimuli])
    return Scaling(factor, float(CLIP_MV), float(v.mean()), float(v.std()) or 1.0, float(i.mean()), float(i.std()) or 1.0)


def _configure_torch(seed: int):
    """Seed torch, make it deterministic and single-threaded; return the device to train on."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, if on a GPU
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # tiny per-step ops: intra-op threads only add overhead
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
