"""Tests of the gru plugin: real networks, real training on small simulated data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import qsnmc
from qsnmc_plugins.gru.batching import make_batch, prediction_chunks
from qsnmc_plugins.gru.inputs import InputScaling
from qsnmc_plugins.gru.model import GRUModel
from qsnmc_plugins.gru.training import TrainConfig, train_network
from qsnmc_plugins.hazard.recovery import TrainingDiverged
from qsnmc_plugins.hazard.windows import StimulusSequence, sample_windows

DT_S = 1e-3


# ------------------------------------------------------------ a known stochastic spiking model
def escape_rate_neuron(duration_s: float, n_reps: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A GLM-like escape-rate neuron: current (pA), and spike times (s) per repetition.

    Hazard rate = exp(a + b u(t)) per s, u the current low-pass filtered with tau = 10 ms,
    with a 5 ms absolute refractory period and a recovery of 20 ms after each spike.
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s / DT_S))
    a = np.exp(-DT_S / 0.004)
    ou = np.zeros(n)
    noise = rng.normal(0.0, 100.0 * np.sqrt(1 - a * a), n)
    for k in range(1, n):
        ou[k] = a * ou[k - 1] + noise[k]
    current = 50.0 + ou
    filt = qsnmc.lowpass((current - 50.0) / 100.0, DT_S, 0.01)
    rate = np.exp(np.log(3.0) + 6.0 * filt)  # Hz
    since = np.full(n_reps, 1.0)
    spikes = [[] for _ in range(n_reps)]
    for k in range(n):
        recovery = np.clip((since - 0.005) / 0.02, 0.0, 1.0)
        p = 1.0 - np.exp(-rate[k] * DT_S * recovery)
        fired = rng.random(n_reps) < p
        since += DT_S
        for r in np.flatnonzero(fired):
            spikes[r].append(k * DT_S + 0.5 * DT_S)
        since[fired] = 0.0
    return current, [np.array(s) for s in spikes]


def _training(current: np.ndarray, spikes: list[np.ndarray], window_s: tuple[float, float],
              name: str = "A") -> qsnmc.TrainingStimulus:
    lo, hi = (int(round(w / DT_S)) for w in window_s)
    voltage = np.full((len(spikes), hi - lo), -65.0)
    trains = tuple(s[(s >= window_s[0]) & (s < window_s[1])] for s in spikes)
    return qsnmc.TrainingStimulus(name, DT_S, current, window_s, voltage, trains)


@pytest.fixture(scope="module")
def escape_data():
    current, spikes = escape_rate_neuron(24.0, 6, seed=3)
    train = qsnmc.TrainingData("escape", (_training(current, spikes, (0.0, 18.0)),), delta_s=0.004)
    test_spikes = [s[s >= 18.0] for s in spikes]
    return train, qsnmc.Stimulus("A", DT_S, current, (18.0, 24.0), len(spikes)), test_spikes


#: shorter training windows and prediction chunks (backpropagation time grows with length)
SHORT_WINDOWS = {"seq_bins": 400, "burn_bins": 100}


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["gru", "dendplrnn"])
def test_hazard_readout_recovers_escape_rate_neuron(escape_data, cell):
    train, stim, test_spikes = escape_data
    model = GRUModel(seed=0, budget=0.075, hidden=16, members=1, steps=800, cell=cell, **SHORT_WINDOWS)  # 60 steps
    record = model.fit(train)
    pred = model.predict(stim)
    assert np.all(np.diff(pred) > 0) and pred.min() >= 18.0 and pred.max() < 24.0
    score = qsnmc.score_heldout({"A": pred}, _heldout(stim, test_spikes), 0.004)
    reliability = score.stimuli[0].reliability
    assert reliability > 0.3  # the neuron is reliable enough for the check to mean something
    # a rate-matched Poisson train scores about 0; the hazard's peaks must do far better
    rng = np.random.default_rng(0)
    rate = np.mean([s.size for s in test_spikes]) / 6.0
    poisson = np.sort(rng.uniform(18.0, 24.0, rng.poisson(rate * 6.0)))
    chance = qsnmc.score_heldout({"A": poisson}, _heldout(stim, test_spikes), 0.004).performance
    assert score.performance > 0.6 and score.performance > chance + 0.5  # gru: 1.08 and 1.10 for seeds 0 and 1
    assert record["held_out"]["performance"] > 0.3  # held-out part of the training window
    assert record["details"]["device"] in ("cpu", "cuda") or record["details"]["device"].startswith("cuda")
    assert len(record["curves"]["member 0 loss"]["y"]) == record["details"]["training"]["steps"] == 60


def _heldout(stim: qsnmc.Stimulus, spikes: list[np.ndarray]) -> tuple:
    """The test part of the simulation as held-out stimuli, to score with qsnmc.score_heldout."""
    return (qsnmc.HeldOutStimulus(stim, tuple(spikes), np.zeros((len(spikes), 1))),)


# ------------------------------------------------------------ determinism and ensembling
def _small_two_stimulus_training() -> qsnmc.TrainingData:
    c1, s1 = escape_rate_neuron(6.0, 3, seed=1)
    c2, s2 = escape_rate_neuron(5.0, 3, seed=2)
    return qsnmc.TrainingData("escape2", (_training(c1, s1, (0.0, 6.0), "A"), _training(c2, s2, (0.0, 5.0), "B")),
                              delta_s=0.004)


def test_ensemble_fit_is_deterministic_per_seed():
    """Two fits of the same seed give bit-identical predictions and training curves (torch seeded
    from the model's seed, deterministic kernels); every predictor is recorded as a candidate."""
    train = _small_two_stimulus_training()
    stim = qsnmc.Stimulus("A", DT_S, train.stimuli[0].current_pA, (4.0, 6.0), 3)
    runs = []
    for _ in range(2):
        m = GRUModel(seed=5, budget=0.0125, hidden=8, members=2, predict_burn_bins=100, **SHORT_WINDOWS)  # 10 steps
        rec = m.fit(train)
        runs.append((m.predict(stim), rec["curves"], [m.predict_with(stim, p) for p in sorted(m.predictors)]))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][2], runs[1][2]))
    assert [c["choice"]["predictor"] for c in rec["candidates"]] == ["member 0", "member 1", "ensemble"]
    assert rec["fitted"]["chosen_predictor"] == m.chosen == "ensemble"  # the default rule: every member averaged
    assert list(rec["held_out"]["per_stimulus"]) == ["A", "B"]
    assert rec["settings"]["members"] == 2 and rec["settings"]["seq_bins"] == 400
    json.dumps(rec)  # the fit record is JSON-serialisable


def test_settings_are_checked_and_reach_the_fit():
    with pytest.raises(qsnmc.SettingsError, match="cell"):
        GRUModel(cell="rnn")
    with pytest.raises(qsnmc.SettingsError, match="no setting"):
        GRUModel(inputs="slow")
    model = GRUModel(seed=0, budget=0.0125, hidden=4, input_taus_s=[0.05], batch_size=4, predict_burn_bins=100,
                     **SHORT_WINDOWS)
    rec = model.fit(_small_two_stimulus_training())
    assert model.scaling.taus_s == (0.05,) and rec["details"]["channels"] == ["current", "lowpass 50 ms"]
    assert rec["details"]["training"]["batch_size"] == 4 and rec["settings"]["input_taus_s"] == [0.05]


def test_the_non_recurrent_control_is_causal_with_a_128_bin_field_and_fits_with_the_same_recipe():
    from qsnmc_plugins.gru.network import LN_FILTER_BINS, SpikeHazardNet

    torch.manual_seed(0)
    net = SpikeHazardNet(3, 8, "ln")
    x = torch.randn(2, 400, 3)
    with torch.no_grad():
        y = net(x)
        x[:, 200] += 3.0  # one input bin moves the output only in the filter's field after it
        changed = (net(x) != y).any(0).nonzero().flatten()
    assert changed.min() == 200 and changed.max() == 200 + LN_FILTER_BINS - 1
    train = _small_two_stimulus_training()
    model = GRUModel(seed=0, budget=0.0125, cell="ln", hidden=4, predict_burn_bins=100, **SHORT_WINDOWS)
    rec = model.fit(train)
    assert rec["settings"]["cell"] == "ln" and np.isfinite(rec["held_out"]["performance"])
    pred = model.predict(qsnmc.Stimulus("A", DT_S, train.stimuli[0].current_pA, (4.0, 6.0), 3))
    assert pred.size == 0 or (pred.min() >= 4.0 and pred.max() < 6.0)


def test_the_dendplrnn_cell_stays_bounded_and_its_voltage_unit_is_forced_by_the_recording():
    from qsnmc_plugins.dendplrnn.network import A_MAX
    from qsnmc_plugins.gru.network import SpikeHazardNet

    torch.manual_seed(0)
    net = SpikeHazardNet(3, 8, "dendplrnn")
    with torch.no_grad():
        net.rnn.net.A.fill_(1.5)
    net.project()
    a_max = float(net.rnn.net.A.detach().abs().max())
    assert a_max == pytest.approx(A_MAX) and a_max < 1.0
    x = torch.randn(2, 120, 3)
    with torch.no_grad():
        logits, v_free = net.forward_with_voltage(x)
        assert torch.equal(logits, net(x))  # the voltage unit is read from the same run
        forcing = torch.zeros(120, dtype=torch.bool)
        forcing[50] = True
        _, v_self = net.forward_with_voltage(x, v_free, forcing)  # forced with its own prediction: no change
        _, v_forced = net.forward_with_voltage(x, v_free + 1.0, forcing)
    assert torch.equal(v_self, v_free)
    assert torch.equal(v_forced[:, :51], v_free[:, :51]) and not torch.allclose(v_forced[:, 51:], v_free[:, 51:])
    with pytest.raises(ValueError, match="dendPLRNN"):
        SpikeHazardNet(3, 8, "gru", voltage_head=True).forward_with_voltage(x, v_free, forcing)


def _with_voltage(train: qsnmc.TrainingData) -> qsnmc.TrainingData:
    """The training data with a voltage that follows the filtered current and peaks at each spike."""
    stimuli = []
    for q in train.stimuli:
        lo = int(round(q.window_s[0] / DT_S))
        sub = -65.0 + 5.0 * qsnmc.lowpass((q.current_pA - 50.0) / 100.0, DT_S, 0.01)[lo:lo + q.voltage_mV.shape[1]]
        v = np.tile(sub, (q.n_repetitions, 1))
        for r, ts in enumerate(q.spike_times_s):
            v[r, np.floor((ts - q.window_s[0]) / DT_S).astype(int)] = 20.0
        stimuli.append(qsnmc.TrainingStimulus(q.name, DT_S, q.current_pA, q.window_s, v, q.spike_times_s))
    return qsnmc.TrainingData(train.challenge, tuple(stimuli), delta_s=train.delta_s)


@pytest.mark.parametrize("cell, forcing", [("dendplrnn", 10), ("gru", 0)])
def test_the_voltage_auxiliary_reaches_the_loss_with_the_same_recipe(cell, forcing):
    train = _with_voltage(_small_two_stimulus_training())
    common = dict(seed=0, budget=0.0125, cell=cell, hidden=8, predict_burn_bins=100, **SHORT_WINDOWS)
    plain = GRUModel(**common).fit(train)
    model = GRUModel(voltage_weight=1.0, teacher_forcing_bins=forcing, **common)
    rec = model.fit(train)
    assert rec["settings"]["voltage_weight"] == 1.0 and np.isfinite(rec["held_out"]["performance"])
    assert rec["curves"]["member 0 loss"]["y"] != plain["curves"]["member 0 loss"]["y"]
    pred = model.predict(qsnmc.Stimulus("A", DT_S, train.stimuli[0].current_pA, (4.0, 6.0), 3))
    assert pred.size == 0 or (pred.min() >= 4.0 and pred.max() < 6.0)


def test_teacher_forcing_needs_the_dendplrnn_cell_and_a_voltage_target():
    with pytest.raises(qsnmc.SettingsError, match="teacher_forcing_bins"):
        GRUModel(teacher_forcing_bins=10, voltage_weight=1.0)
    with pytest.raises(qsnmc.SettingsError, match="voltage_weight"):
        GRUModel(cell="dendplrnn", teacher_forcing_bins=10)


def test_weight_average_is_deterministic_and_kept_at_the_last_step():
    """With ``ema_decay`` and ``keep="last"`` the kept network is the weight average after the last
    step: the same for the same seed, different from the raw weights, not a picked checkpoint."""
    seqs = _tiny_sequences()
    cfg = TrainConfig(hidden=4, steps=12, batch_size=4, seq_bins=100, burn_bins=10, eval_every=4,
                      ema_decay=0.8, keep="last")
    calls = []

    def evaluate(net):
        calls.append(1)
        return {"gamma_over_r": 0.0}

    runs = [train_network(seqs, cfg, 3, 0.05, evaluate, torch.device("cpu")) for _ in range(2)]
    raw = train_network(seqs, TrainConfig(**{**cfg.as_record(), "ema_decay": 0.0}), 3, 0.05, evaluate,
                        torch.device("cpu"))
    a, b, r = (torch.cat([p.detach().reshape(-1) for p in x.net.parameters()]) for x in (*runs, raw))
    assert torch.equal(a, b)  # deterministic per seed
    assert not torch.allclose(a, r)  # the average, not the raw weights
    assert runs[0].loss_curve == raw.loss_curve  # averaging does not change the training itself
    assert runs[0].best.step == 12 and [e["step"] for e in runs[0].ema_curve] == [12]
    with pytest.raises(ValueError, match="keep"):
        train_network(seqs, TrainConfig(hidden=4, steps=2, batch_size=2, seq_bins=50, burn_bins=5, keep="x"), 0,
                      0.05, evaluate, torch.device("cpu"))


# ------------------------------------------------------------ batching never crosses stimuli
def test_a_batch_row_is_one_stimulus_burn_in_and_targets():
    seqs = []
    for i, n in enumerate((700, 1500, 500)):
        x = np.stack([np.full(n, i + 1.0), np.arange(n)], axis=1).astype(np.float32)
        seqs.append(StimulusSequence(str(i), x, np.full(n, 0.1 * (i + 1), np.float32), 100, n - 10))
    picks = sample_windows(seqs, 200, 300, np.random.default_rng(0))
    x, y = make_batch(seqs, picks, 300, 100)
    assert x.shape == (200, 400, 2) and y.shape == (200, 300)
    for w, xr, yr in zip(picks, x, y):
        assert np.all(xr[:, 0] == w.stimulus + 1) and np.allclose(yr, 0.1 * (w.stimulus + 1))  # one stimulus
        assert np.array_equal(xr[:, 1], np.arange(w.start - 100, w.start + 300))  # its burn-in, then targets


def test_prediction_chunks_cover_the_window_in_order():
    x = np.arange(100, dtype=np.float32)[:, None]
    chunks, n = prediction_chunks(x, 10, 95, 20, 5)
    assert n == 5 and chunks.shape == (5, 25, 1)
    targets = chunks[:, 5:, 0].reshape(-1)[: 95 - 10]
    assert np.array_equal(targets, np.arange(10, 95))
    assert np.array_equal(chunks[0, :5, 0], np.arange(5, 10))  # burn-in is the bins just before
    first, _ = prediction_chunks(x, 2, 10, 8, 5)  # before the protocol: the first row repeats
    assert np.array_equal(first[0, :, 0], [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])


# ------------------------------------------------------------ divergence
def _tiny_sequences() -> list[StimulusSequence]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 2)).astype(np.float32)
    y = (rng.random(800) < 0.05).astype(np.float32)
    return [StimulusSequence("A", x, y, 0, 800)]


def test_nan_loss_restarts_from_last_good_checkpoint_with_lower_rate():
    cfg = TrainConfig(hidden=4, steps=12, batch_size=4, seq_bins=100, burn_bins=10, eval_every=4)
    hit = {"done": False}

    def fault(step, loss):
        if step == 6 and not hit["done"]:
            hit["done"] = True
            return loss * float("nan")
        return loss

    res = train_network(_tiny_sequences(), cfg, 0, 0.05, lambda net: {"gamma_over_r": 0.0},
                        torch.device("cpu"), fault=fault)
    assert res.recoveries == [{"step": 6, "restart_from_step": 4, "lr_scale": 0.5}]
    assert all(np.isfinite(res.loss_curve)) and all(torch.isfinite(p).all() for p in res.net.parameters())


def test_persistent_divergence_raises_a_clear_error():
    cfg = TrainConfig(hidden=4, steps=12, batch_size=4, seq_bins=100, burn_bins=10, eval_every=4, max_recoveries=2)
    with pytest.raises(TrainingDiverged, match="non-finite loss"):
        train_network(_tiny_sequences(), cfg, 0, 0.05, lambda net: {"gamma_over_r": 0.0}, torch.device("cpu"),
                      fault=lambda step, loss: loss * float("nan") if step >= 2 else loss)


# ------------------------------------------------------------ inputs
def test_input_scaling_standardises_channels():
    rng = np.random.default_rng(1)
    c = rng.normal(100.0, 30.0, 20000)
    sc = InputScaling.fit([c], 1e-4, 1e-3, (0.02,))
    x = sc.inputs(c, 1e-4)
    assert x.shape == (2000, 2) and np.allclose(x.std(axis=0), 1.0, atol=1e-3)


def test_the_fast_gru_computes_nn_grus_outputs_and_autograds_gradients():
    """FastGRU's forward equals torch.nn.GRU's to float32 round-off (1e-6 over 60 steps: nn.GRU fuses its
    gates in kernels whose rounding depends on the CPU's vector width; with ATen's AVX2 or baseline kernels
    the two agree bit for bit) and is bit-identical run to run; its hand-written backward pass equals
    autograd's: to round-off in float32, by finite differences in float64 (gradcheck, including the
    inputs' gradient)."""
    from torch import nn

    from qsnmc_plugins.gru.fast_gru import FastGRU, _GRUWindow

    torch.manual_seed(3)
    reference = nn.GRU(5, 16, batch_first=True)
    fast = FastGRU(5, 16)
    fast.load_state_dict(reference.state_dict())  # the same state dict as nn.GRU
    x, weights = torch.randn(4, 60, 5), torch.randn(4, 60, 16)
    with torch.no_grad():
        out_ref, last_ref = reference(x)
        out_fast, last_fast = fast(x)
        again, _ = fast(x)
    assert torch.allclose(out_ref, out_fast, rtol=0, atol=1e-6)
    assert torch.allclose(last_ref, last_fast, rtol=0, atol=1e-6)
    assert torch.equal(out_fast, again)
    for net in (reference, fast):
        net.zero_grad()
        (net(x)[0] * weights).sum().backward()
    for (name, p_ref), p_fast in zip(reference.named_parameters(), fast.parameters()):
        assert torch.allclose(p_ref.grad, p_fast.grad, rtol=1e-4, atol=1e-5), name
    args = [torch.randn(*shape, dtype=torch.float64, requires_grad=True)
            for shape in ((7, 3, 4), (15, 4), (15, 5), (15,), (15,))]  # x (T, N, n_in), w_ih, w_hh, b_ih, b_hh
    assert torch.autograd.gradcheck(_GRUWindow.apply, args)
    with pytest.raises(ValueError, match="zero state"):
        fast(x, torch.zeros(1, 4, 16))
    with pytest.raises(ValueError, match="batched windows"):
        fast(x[0])


# ------------------------------------------------------------ a held-out collapse does not decide the fit
def _learnable_sequence(seed: int, n: int = 3000) -> StimulusSequence:
    """Inputs and a target spike probability that a small GRU learns: a sigmoid of the first input's
    exponential filtrate (5-bin decay)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    drive = np.convolve(x[:, 0], np.exp(-np.arange(20) / 5.0), mode="full")[:n]
    return StimulusSequence("A", x, (1 / (1 + np.exp(-(1.5 * drive - 4)))).astype(np.float32), 0, n)


@pytest.mark.slow
def test_a_bad_step_is_rolled_back_so_the_fit_ends_near_an_undisturbed_one(monkeypatch):
    """A step that wrecks the weights (x30 plus noise, after step 45 of 120) collapses the held-out score
    (minus the held-out cross-entropy here). With the rollback the run goes back to its best checkpoint's
    state and ends within 0.02 of the undisturbed run's kept score; without it, the wrecked network never
    recovers and the kept checkpoint is the one before the collapse, more than 0.04 worse."""
    from qsnmc_plugins.gru.network import SpikeHazardNet

    fit, held = [_learnable_sequence(0)], _learnable_sequence(1)
    hx, hy = torch.from_numpy(held.inputs[None]), torch.from_numpy(held.target[None])

    def evaluate(net):
        bce = torch.nn.functional.binary_cross_entropy_with_logits(net(hx)[:, 100:], hy[:, 100:])
        return {"gamma_over_r": -float(bce)}

    project = SpikeHazardNet.project

    def train(bad_step: int, rollback_drop: float):
        steps = {"n": 0}

        def wrecking_project(self):
            project(self)
            steps["n"] += 1
            if steps["n"] == bad_step:
                g = torch.Generator().manual_seed(0)
                with torch.no_grad():
                    for p in self.parameters():
                        p.mul_(30).add_(torch.randn(p.shape, generator=g) * 3)

        monkeypatch.setattr("qsnmc_plugins.gru.network.SpikeHazardNet.project", wrecking_project)
        cfg = TrainConfig(hidden=8, steps=120, batch_size=8, seq_bins=200, burn_bins=20, eval_every=10,
                          rollback_drop=rollback_drop)
        return train_network(fit, cfg, 0, 0.05, evaluate, torch.device("cpu"))

    clean, rolled, wrecked = train(0, 0.1), train(45, 0.1), train(45, 0.0)
    assert not clean.rollbacks and not wrecked.rollbacks
    assert [(r["step"], r["back_to_step"], r["lr_scale"]) for r in rolled.rollbacks] == [(50, 40, 0.5)]
    assert rolled.best.step == 120 and abs(rolled.best.score - clean.best.score) < 0.02
    assert wrecked.best.step == 40 and wrecked.best.score < clean.best.score - 0.04
