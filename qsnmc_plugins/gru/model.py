"""The qsnmc model ``gru``: a recurrent network's spike hazard, ensembled, read out by peak picking.

Fit (on ``TrainingData`` only):
1. Bins of 1 ms: the injected current (block mean, standardised) and causal low-pass
   filtrates of it (started at the protocol's start) are the inputs; the target is the
   fraction of repetitions spiking in each bin. Two input sets (``INPUT_SETS``): "fast"
   (20, 100, 500 ms filtrates) and "slow" (also 5 and 20 s, for cells that adapt over tens of
   seconds).
2. ``train.time_split``: the last 20 % of every stimulus' training window is held out;
   each stimulus is a sequence of its own (windows never join two stimuli). With several
   stimuli the time split is used too: leave-one-stimulus-out folds would multiply the
   training cost by the number of stimuli.
3. Networks are trained by binary cross-entropy on windows of the fit part (see
   :mod:`training`), ``STEPS`` steps each, with an exponential moving average of the weights
   (``EMA_DECAY`` per step); every ``EVAL_EVERY`` steps the average is scored on the held-out
   part (Gamma/R with its best readout) and the best evaluated average is kept. With
   ``inputs="auto"`` (not the default: "slow" won every race measured) one network per input
   set trains the first ``RACE_FRACTION`` of its steps; the set whose network has the lowest
   held-out binary cross-entropy so far is kept and its network trains on, the other stops.
4. ``N_MEMBERS`` networks (one by default; seeds ``1000 * seed + k``); with several members,
   the ensemble's hazard is the mean of its members' hazards. The readout (smoothing, a fixed
   or count-matched threshold, refractory gap; :mod:`qsnmc_plugins.hazard.readout`) is chosen
   on the held-out part, and the predictor kept (the ensemble, the ensemble of the best
   members, or one member) is the one with the best held-out Gamma/R.

Predict: the hazard over the window, computed in 1 s chunks each after a 1 s burn-in on the
current before it (longer than training's 200 ms, so that the state's slow part settles too),
then the readout: one deterministic train.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from qsnmc import Model, Stimulus, TrainingData, bar, score_heldout

from qsnmc_plugins.gru.batching import StimulusSequence
from qsnmc_plugins.hazard.heldout import HeldOutScorer
from qsnmc_plugins.gru.inputs import InputScaling, spike_fraction, window_bins
from qsnmc_plugins.hazard.readout import Readout, choose_readout, spikes_from_hazard

BIN_S = 1e-3  #: bin width (s): resolves spikes at +-2 ms (2007) and +-4 ms (2009)
#: time constants (s) of the current's low-pass filtrates given as extra inputs: the "fast" set,
#: or with two slow ones added (history over tens of seconds, for cells that adapt that slowly);
#: ``inputs="auto"`` races one network on each (3/8 more steps)
INPUT_SETS = {"fast": (0.02, 0.1, 0.5), "slow": (0.02, 0.1, 0.5, 5.0, 20.0)}
INPUTS = "slow"  #: the default input set: held-out cross-entropy favoured it in every race measured
RACE_FRACTION = 3 / 8  #: share of the steps each input set's network trains before the race is decided
HELDOUT_FRACTION = 0.2  #: end of each stimulus' training window held out for selection
N_MEMBERS = 1  #: networks in the ensemble (different seeds); one trained longer beat two on held-out
STEPS = 800  #: optimiser steps per member at budget 1 (with inputs="auto", 3/8 more for the race)
MIN_STEPS = 10
SEQ_BINS = 1000  #: bins per training window and prediction chunk whose targets count (1 s)
BURN_BINS = 200  #: burn-in bins before each training window (200 ms: the state settles from zero)
#: burn-in bins before each prediction chunk (held-out and test): the state's slow part settles too
PREDICT_BURN_BINS = 1000
LR = 1e-2  #: Adam's peak learning rate
EMA_DECAY = 0.99  #: per-step decay of the weight average (0: none); checkpoints are of the average
#: Adam's second-moment decay (at 0.999 its step size stayed large after rare large spike-bin gradients)
ADAM_BETA2 = 0.99
BURN_NO_GRAD = False  #: run each window's burn-in without gradient (cheaper; not better on held-out)
KEEP = "best"  #: "best" checkpoint on held-out, or the "last" (averaged) weights
EVAL_EVERY = 100  #: optimiser steps between held-out evaluations (at most)
MEMBER_SEED_STRIDE = 1000  #: member k of model seed s trains from seed 1000 s + k


class GRUModel(Model):
    name = "gru"
    description = "GRU (or LSTM) spike hazard on the current and its filtrates, weight-averaged, peak-picking readout"
    param_grid = {"cell": ["gru", "lstm"], "inputs": ["auto", "fast", "slow"]}

    def __init__(self, seed: int = 0, budget: float = 1.0, cell: str = "gru", hidden: int = 64,
                 members: int = N_MEMBERS, inputs: str | None = None) -> None:
        super().__init__(seed, budget)
        inputs = INPUTS if inputs is None else inputs  # None: the module's default, read at construction
        if inputs not in (*INPUT_SETS, "auto"):
            raise ValueError(f"inputs must be one of {(*INPUT_SETS, 'auto')}, got {inputs!r}")
        self.inputs = str(inputs)
        self.input_set: str | None = None
        self.cell = str(cell)
        self.hidden = int(hidden)
        self.n_members = max(1, int(members))
        self.scaling: InputScaling | None = None
        self.nets: list = []
        self.readout: Readout | None = None
        #: every predictor compared on the held-out part: name -> (networks, readout)
        self.predictors: dict[str, tuple[list, Readout]] = {}
        self._device = None
        self._config = None

    # ------------------------------------------------------------------ fitting
    def fit(self, train: TrainingData) -> dict[str, Any]:
        import torch

        from qsnmc_plugins.gru.ensemble import ensemble_hazard
        from qsnmc_plugins.gru.training import TrainConfig, finish, train_network, training_run

        t_start = time.perf_counter()
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, if on a GPU
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(1)  # small recurrent steps: extra threads only add overhead on 2 shared cores
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._device = device
        steps = max(MIN_STEPS, int(round(STEPS * self.budget)))
        config = TrainConfig(hidden=self.hidden, cell=self.cell, steps=steps, seq_bins=SEQ_BINS,
                             burn_bins=BURN_BINS, eval_every=max(5, min(EVAL_EVERY, steps // 8)), lr=LR,
                             ema_decay=EMA_DECAY, keep=KEEP, adam_beta2=ADAM_BETA2,
                             burn_no_grad=BURN_NO_GRAD)
        self._config = config
        self._predict_burn_bins = PREDICT_BURN_BINS

        fold = train.time_split(HELDOUT_FRACTION)
        dt = train.dt_s
        names = tuple(INPUT_SETS) if self.inputs == "auto" else (self.inputs,)
        sets = {n: _InputSet.build(n, INPUT_SETS[n], fold, dt) for n in names}
        first = sets[names[0]]
        bin_s = first.scaling.bin_s
        sequences = first.sequences
        base_rate = float(np.mean(np.concatenate([q.target[q.target_start:q.target_stop] for q in sequences])))
        longest = max(q.n_target_bins for q in sequences)
        if longest < config.seq_bins:  # short recordings: windows as long as the longest fit part
            config = replace(config, seq_bins=longest)
            self._config = config

        scorer = HeldOutScorer(fold.heldout, train.delta_s)
        held_bins, held_t0, held_win, held_target = {}, {}, {}, {}
        for h in fold.heldout:
            a, b = window_bins(h.stimulus.window_s, bin_s)
            held_bins[h.name] = (a, b)
            held_t0[h.name], held_win[h.name] = a * bin_s, h.stimulus.window_s
            held_target[h.name] = spike_fraction(h.spike_times_s, b, bin_s)[a:b]

        held_count = float(sum(np.mean([len(t) for t in h.spike_times_s]) for h in fold.heldout))

        def hazards_of(nets, inputs: "_InputSet") -> dict[str, np.ndarray]:
            return {k: ensemble_hazard(nets, inputs.held_inputs[k], *held_bins[k], config.seq_bins,
                                        self._predict_burn_bins, device)
                    for k in held_bins}

        def evaluator(inputs: "_InputSet"):
            def evaluate(net) -> dict[str, float]:
                hz = hazards_of([net], inputs)
                r, p = choose_readout(hz, held_t0, bin_s, scorer, held_win)
                bce = float(np.mean(np.concatenate([_bce(hz[k], held_target[k]) for k in hz])))
                n_pred = sum(spikes_from_hazard(hz[k], held_t0[k], bin_s, r, held_win[k]).size for k in hz)
                return {"gamma_over_r": p, "bce": bce, "rate_ratio": n_pred / max(1.0, held_count)}
            return evaluate

        # with inputs="auto", one network per input set trains the first RACE_FRACTION of its
        # steps; the set whose network has the lowest held-out cross-entropy so far wins, the others stop
        race_steps = min(steps, max(1, int(round(RACE_FRACTION * steps)))) if len(sets) > 1 else 0
        race: dict[str, dict[str, float]] = {}
        seed0 = MEMBER_SEED_STRIDE * self.seed
        members = []
        with bar(steps * self.n_members + race_steps * (len(sets) - 1), "gru fit") as pb:
            runs = {n: training_run(sets[n].sequences, config, seed0, base_rate, evaluator(sets[n]), device, pb)
                    for n in sets}
            done: dict[str, Any] = {}
            if len(sets) > 1:
                for n, run in runs.items():
                    step, res = 0, None
                    try:
                        while step < race_steps:
                            step, res = next(run)
                    except StopIteration as stop:
                        done[n] = res = stop.value
                    curve = res.ema_curve or res.heldout_curve
                    race[n] = {"heldout_bce": min(e["bce"] for e in curve),
                               "heldout_gamma_over_r": max(e["gamma_over_r"] for e in curve)}
                # the held-out likelihood decides: early in training it ranks the sets more steadily
                # than Gamma/R, whose readout search swings between evaluations; a tie keeps "fast"
                winner = min(race, key=lambda n: race[n]["heldout_bce"])
                for n, run in runs.items():
                    if n != winner:
                        run.close()
            else:
                winner = names[0]
            chosen_set = sets[winner]
            members.append(done[winner] if winner in done else finish(runs[winner]))
            for k in range(1, self.n_members):
                members.append(train_network(chosen_set.sequences, config, seed0 + k, base_rate,
                                             evaluator(chosen_set), device, pb))
        self.scaling = chosen_set.scaling
        self.input_set = winner
        self.nets = [m.net for m in members]

        def with_readout(nets) -> tuple:  # (networks, readout, held-out P), the readout chosen on held-out
            return (nets,) + choose_readout(hazards_of(nets, chosen_set), held_t0, bin_s, scorer, held_win)

        # single networks vs the ensemble, each with its own readout chosen on the held-out part
        candidates = {}
        for k, m in enumerate(members):
            candidates[f"member {k}"] = with_readout([m.net])
        if len(members) > 1:
            candidates["ensemble"] = with_readout(self.nets)
            # a member that trained badly drags the mean down: the best members' ensembles compete too
            ranked = sorted(range(len(members)), key=lambda k: -candidates[f"member {k}"][2])
            for n_best in range(2, len(members)):
                candidates[f"ensemble of best {n_best}"] = with_readout([members[k].net for k in ranked[:n_best]])
        self.predictors = {c: (v[0], v[1]) for c, v in candidates.items()}
        chosen = max(candidates, key=lambda c: candidates[c][2])
        self.nets, self.readout, chosen_p = candidates[chosen]
        hz = hazards_of(self.nets, chosen_set)
        preds = {k: spikes_from_hazard(hz[k], held_t0[k], bin_s, self.readout, held_win[k]) for k in hz}
        validation = score_heldout(preds, fold.heldout, train.delta_s)
        return {
            "architecture": {"cell": self.cell, "hidden_units": self.hidden, "layers": 1, "readout": "linear -> sigmoid hazard",
                             "ensemble_members": self.n_members},
            "inputs": {"bin_s": bin_s, "input_set": winner, "requested": self.inputs,
                       "channels": ["current"] + [f"lowpass {t * 1e3:g} ms" for t in chosen_set.scaling.taus_s],
                       "scaling": chosen_set.scaling.as_record(),
                       "race": ({"steps": race_steps, "by_input_set": race,
                                 "rule": "lowest held-out cross-entropy so far after the race's steps"}
                                if race else None)},
            "training": {**config.as_record(), "loss": "binary cross-entropy vs fraction of repetitions spiking per bin",
                         "optimiser": "Adam, cosine decay to 2 % of lr, grad-norm clip",
                         "predict_burn_bins": self._predict_burn_bins,
                         "heldout": fold.label, "member_seeds": [MEMBER_SEED_STRIDE * self.seed + k
                                                                 for k in range(self.n_members)],
                         "device": str(device), "samples_per_s": float(np.mean([m.samples_per_s for m in members]))},
            "members": [{"seed": MEMBER_SEED_STRIDE * self.seed + k, "best_step": m.best_step,
                         "heldout_gamma_over_r_at_best_step": m.best_score, "recoveries": m.recoveries,
                         "loss_curve": m.loss_curve,
                         "heldout_gamma_over_r_curve": [e["gamma_over_r"] for e in m.heldout_curve],
                         "heldout_bce_curve": [e["bce"] for e in m.heldout_curve],
                         "ema_heldout_gamma_over_r_curve": [e["gamma_over_r"] for e in m.ema_curve],
                         "ema_heldout_bce_curve": [e["bce"] for e in m.ema_curve],
                         "ema_heldout_rate_ratio_curve": [e.get("rate_ratio") for e in m.ema_curve],
                         "heldout_rate_ratio_curve": [e.get("rate_ratio") for e in m.heldout_curve],
                         "heldout_curve_steps": [e["step"] for e in m.heldout_curve]} for k, m in enumerate(members)],
            "loss_curve": members[0].loss_curve,
            "heldout_gamma_over_r_curve": [e["gamma_over_r"] for e in members[0].heldout_curve],
            "heldout_gamma_over_r_by_predictor": {c: v[2] for c, v in candidates.items()},
            "single_network_heldout_gamma_over_r": candidates["member 0"][2],
            "ensemble_heldout_gamma_over_r": candidates["ensemble"][2] if "ensemble" in candidates else None,
            "chosen_predictor": chosen,
            "chosen_because": "highest held-out Gamma/R (each predictor with its own best readout)",
            "checkpoint_rule": "per member, the evaluated step with the highest held-out Gamma/R (best readout)",
            "readout": self.readout.as_record(),
            "heldout_gamma_over_r": chosen_p,
            "validation": validation.to_dict(),
            "held_out_per_stimulus": validation.per_stimulus(),
            "device": str(device),
            "fit_time_s": time.perf_counter() - t_start,
        }

    # ------------------------------------------------------------------ prediction
    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) inside the window, from the chosen predictor: one deterministic train."""
        if not self.nets or self.scaling is None or self.readout is None:
            raise RuntimeError("predict() before fit()")
        return self._predict(stimulus, self.nets, self.readout)

    def predict_with(self, stimulus: Stimulus, predictor: str) -> np.ndarray:
        """Spike times (s) from one of the predictors compared in the fit (``"member 0"``,
        ``"ensemble"``, ...; see the fit record's ``heldout_gamma_over_r_by_predictor``)."""
        nets, readout = self.predictors[predictor]
        return self._predict(stimulus, nets, readout)

    def _predict(self, stimulus: Stimulus, nets: list, readout: Readout) -> np.ndarray:
        from qsnmc_plugins.gru.ensemble import ensemble_hazard

        sc, cfg = self.scaling, self._config
        x = sc.inputs(stimulus.current_pA, stimulus.dt_s)
        a, b = window_bins(stimulus.window_s, sc.bin_s)
        hz = ensemble_hazard(nets, x, a, b, cfg.seq_bins, self._predict_burn_bins, self._device)
        if not np.all(np.isfinite(hz)):
            raise FloatingPointError("the network's hazard is not finite: no spike times predicted")
        return spikes_from_hazard(hz, a * sc.bin_s, sc.bin_s, readout, stimulus.window_s)


def _bce(hazard: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Binary cross-entropy per bin of a hazard against a target fraction."""
    h = np.clip(hazard, 1e-7, 1 - 1e-7)
    return -(target * np.log(h) + (1 - target) * np.log(1 - h))


@dataclass
class _InputSet:
    """One input set on the fit part: its scaling, training sequences and held-out inputs."""

    name: str
    scaling: InputScaling
    sequences: list[StimulusSequence]
    held_inputs: dict[str, np.ndarray]

    @classmethod
    def build(cls, name: str, taus_s: tuple[float, ...], fold, dt_s: float) -> "_InputSet":
        sc = InputScaling.fit([np.asarray(s.current_pA)[: s.window_slice.stop] for s in fold.fit.stimuli],
                              dt_s, BIN_S, taus_s)
        sequences = []
        for s in fold.fit.stimuli:
            x = sc.inputs(s.current_pA, dt_s)
            a, b = window_bins(s.window_s, sc.bin_s)
            b = min(b, x.shape[0])
            sequences.append(StimulusSequence(s.name, x, spike_fraction(s.spike_times_s, x.shape[0], sc.bin_s), a, b))
        held = {h.name: sc.inputs(h.stimulus.current_pA, dt_s) for h in fold.heldout}
        return cls(name, sc, sequences, held)
