"""Tests of the dendplrnn plugin: real networks, real training on small data."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from qsnmc_plugins.dendplrnn.freerun import FreeRunDiverged, NetworkParams, free_run
from qsnmc_plugins.dendplrnn.network import DendPLRNN
from qsnmc_plugins.dendplrnn.training import TrainConfig, forcing_schedule, new_state, train
from qsnmc_plugins.hazard.recovery import TrainingDiverged
from qsnmc_plugins.hazard.windows import StimulusSequence


# ----------------------------------------------------------------- sparse teacher forcing
@pytest.mark.parametrize("tau,burn_in", [(1, 0), (4, 0), (7, 0), (5, 3), (10, 1)])
def test_forcing_schedule_every_tau_steps(tau, burn_in):
    n = 61
    mask = forcing_schedule(n, tau, burn_in)
    anchor = max(burn_in - 1, 0)
    assert mask[: anchor + 1].all()
    forced_after = np.flatnonzero(mask[anchor:]) + anchor
    assert np.all(np.diff(forced_after) == tau)  # exactly every tau steps, none in between
    assert forced_after[-1] + tau >= n


def test_forcing_schedule_rejects_bad_tau():
    with pytest.raises(ValueError):
        forcing_schedule(10, 0)


def _identity_network() -> DendPLRNN:
    """A 3-unit network with z_t = z_{t-1} (no input, no coupling): forcing alone moves it."""
    net = DendPLRNN(3, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.A.fill_(1.0)
        net.W.zero_()
        net.h0.zero_()
        net.C.zero_()
    return net


def test_rollout_forces_exactly_on_schedule():
    """With an identity network (z_t = z_{t-1}), each prediction equals the last forced value."""
    net = _identity_network()
    T, tau = 40, 6
    obs = torch.arange(T, dtype=torch.float32).reshape(1, T, 1) + 100.0
    forcing = forcing_schedule(T, tau, 0)
    pred = net.rollout(torch.tensor([[100.0, 0.0, 0.0]]), torch.zeros(1, T, 1), obs, torch.from_numpy(forcing))
    last_forced = np.maximum.accumulate(np.where(forcing, np.arange(T), 0))
    expected = 100.0 + np.concatenate([[0], last_forced[:-1]])
    np.testing.assert_allclose(pred[0, :, 0].detach().numpy(), expected)


def test_numpy_free_run_matches_torch_rollout():
    g = torch.Generator().manual_seed(1)
    net = DendPLRNN(6, 4, generator=g)
    T = 200
    s = torch.randn(1, T, 1, generator=g)
    x = torch.randn(1, T, 1, generator=g)
    forcing = forcing_schedule(T, 7, 5)
    z0 = torch.cat([x[:, 0], torch.zeros(1, 5)], dim=1)
    with torch.no_grad():
        ref = net.rollout(z0, s, x, torch.from_numpy(forcing))[0].numpy()
    out, _ = free_run(NetworkParams.from_module(net), s[0].double().numpy(), x[0].double().numpy(), forcing)
    np.testing.assert_allclose(out, ref[:, 0], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------- robustness
def test_exploding_free_run_is_reported():
    p = NetworkParams(np.array([1.5, 0.5]), np.zeros((2, 2)), np.zeros(2), np.ones((2, 1)), np.ones(1),
                      np.zeros((1, 2)), 1, np.zeros(2))
    with pytest.raises(FreeRunDiverged, match="diverged"):
        free_run(p, np.ones((5000, 1)))
    with pytest.raises(ValueError, match="no hazard readout"):
        free_run(dataclasses.replace(p, hazard_w=None), np.ones((5, 1)))


def _noise_sequences() -> list[StimulusSequence]:
    """One 2000-step stimulus of random voltage and inputs, no spikes, uniform weights (seed 0)."""
    rng = np.random.default_rng(0)
    n = 2000
    voltage = rng.standard_normal((2, n)).astype(np.float32)
    return [StimulusSequence("noise", rng.standard_normal((n, 1)).astype(np.float32), np.zeros(n, np.float32), 0, n,
                             voltage, np.ones((2, n), np.float32))]


def test_repeated_divergence_restarts_then_fails():
    data = _noise_sequences()
    cfg = TrainConfig(m=3, n_bases=2, tau=5, seq_len=20, burn_in=2, batch_size=4, lr=1e-2)
    st = new_state(cfg, 0, torch.device("cpu"))
    with pytest.raises(TrainingDiverged, match="diverged"):
        train(st, data, 50, lambda net: -math.inf, 5, torch.device("cpu"), max_restarts=2)
    assert st.restarts == 3
    assert st.optimiser.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**2)  # halved at each restart


def test_a_held_out_collapse_returns_training_to_the_best_checkpoint():
    """Scores 0.5, 0.7, then 0.3 (more than ``rollback_drop`` below the best): training goes back to the
    state of the 0.7 checkpoint (weights, average, optimiser) at half the current rate and goes on; the
    collapsed checkpoint is neither kept nor a restart point. Without ``rollback_drop`` it only counts."""
    data = _noise_sequences()
    cfg = TrainConfig(m=3, n_bases=2, tau=5, seq_len=20, burn_in=2, batch_size=4, lr=1e-2)
    scores = iter([0.5, 0.7, 0.3, 0.65, 0.66])
    at_best, running = {}, {}

    def evaluate(net):
        score = next(scores)
        if score == 0.7:
            at_best.update({k: v.clone() for k, v in running["state"].net.state_dict().items()})
        return score

    st = running["state"] = new_state(cfg, 0, torch.device("cpu"))
    train(st, data, 50, evaluate, 10, torch.device("cpu"), rollback_drop=0.1)
    assert st.rollbacks == [(30, 0.3, 20)] and st.best.step == 20 and st.best.score == 0.7
    assert [s for _, s in st.checkpoint_scores] == [0.5, 0.7, 0.3, 0.65, 0.66]
    lr_before = st.optimiser.param_groups[0]["lr"]
    # replay: the state right after the rollback is the 0.7 checkpoint's
    replay = running["state"] = new_state(cfg, 0, torch.device("cpu"))
    scores = iter([0.5, 0.7, 0.3])
    train(replay, data, 30, evaluate, 10, torch.device("cpu"), rollback_drop=0.1)
    for k, v in at_best.items():
        assert torch.equal(replay.net.state_dict()[k], v), k
    assert lr_before < cfg.lr
    scores = iter([0.5, 0.7, 0.3, 0.65, 0.66])
    plain = running["state"] = new_state(cfg, 0, torch.device("cpu"))
    train(plain, data, 50, evaluate, 10, torch.device("cpu"))
    assert not plain.rollbacks and plain.best.score == 0.7


def test_weight_average_is_what_gets_evaluated_and_kept():
    data = _noise_sequences()
    seen = []
    cfg = TrainConfig(m=4, n_bases=2, tau=5, seq_len=20, burn_in=2, batch_size=4, lr=1e-2, ema_decay=0.9)
    st = new_state(cfg, 0, torch.device("cpu"))
    train(st, data, 30, lambda net: seen.append(net) or float(len(seen)), 10, torch.device("cpu"))
    assert all(net is st.ema.module for net in seen) and len(seen) == 3
    assert st.best.step == 30
    np.testing.assert_array_equal(st.best.state["A"].numpy(), st.ema.module.A.detach().numpy())
    assert not torch.allclose(st.ema.module.W, st.net.W)  # an average, not the last weights
    off = new_state(TrainConfig(m=4, n_bases=2, ema_decay=0.0), 0, torch.device("cpu"))
    assert off.ema is None and off.evaluated is off.net


# ----------------------------------------------------------------- learning a known system
def _damped_oscillator(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x'' + 2 zeta w x' + w^2 x = u, sampled at 1 ms (w = 2 pi 8 Hz, zeta = 0.3), u a slow OU drive."""
    dt, w, zeta = 1e-3, 2 * np.pi * 8.0, 0.3
    a = np.exp(-dt / 0.02)
    u = np.zeros(n)
    e = rng.standard_normal(n)
    for k in range(1, n):
        u[k] = a * u[k - 1] + np.sqrt(1 - a * a) * e[k]
    x, v = np.zeros(n), 0.0
    for k in range(1, n):
        v += dt * (u[k] * w * w - 2 * zeta * w * v - w * w * x[k - 1])
        x[k] = x[k - 1] + dt * v
    return (x / x.std()).astype(np.float32), (u / u.std()).astype(np.float32)


@pytest.mark.slow
def test_learns_driven_damped_oscillator():
    """BPTT with sparse teacher forcing learns a driven linear oscillator; the free run
    (20 forced warm-up steps, then 3 s on the drive alone) tracks held-out data."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, u = _damped_oscillator(12000, np.random.default_rng(0))
    train_stop, warm = 9000, 20
    data = [StimulusSequence("osc", u[:train_stop, None], np.zeros(train_stop, np.float32), 0, train_stop,
                             x[None, :train_stop], np.ones((1, train_stop), np.float32))]
    cfg = TrainConfig(m=6, n_bases=4, tau=25, seq_len=80, burn_in=10, batch_size=32, lr=1e-2, spike_loss_weight=0.0)

    def free_run_nmse(params: NetworkParams) -> float:
        lo = train_stop - warm
        forcing = np.arange(x.size - lo) < warm
        pred, _ = free_run(params, u[lo:, None].astype(np.float64), x[lo:, None].astype(np.float64), forcing)
        return float(np.mean((pred[warm:] - x[train_stop:]) ** 2) / np.var(x[train_stop:]))

    st = new_state(cfg, 0, torch.device("cpu"))
    first = free_run_nmse(NetworkParams.from_module(st.net))
    train(st, data, 200, lambda net: -free_run_nmse(NetworkParams.from_module(net)), 25, torch.device("cpu"))
    st.net.load_state_dict(st.best.state)
    nmse = free_run_nmse(NetworkParams.from_module(st.net))
    assert nmse == pytest.approx(-st.best.score)
    assert nmse < 0.25 < first, f"normalised free-run MSE {nmse:.3f} (untrained {first:.3f})"


def _toy_cell(current_pA: np.ndarray, dt: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A noisy leaky integrate-and-fire cell drawn as a voltage trace: 1-sample +20 mV spikes."""
    v, vs = -65.0, np.empty(current_pA.size)
    for k, i in enumerate(current_pA):
        v += dt / 0.02 * (-(v + 65.0) + 0.1 * i) + 0.3 * rng.standard_normal()
        if v > -50.0:
            vs[k], v = 20.0, -65.0
        else:
            vs[k] = v
    return vs, np.flatnonzero(vs > 0) * dt


@pytest.mark.slow
def test_multi_stimulus_fit_and_predict_with_filter_bank():
    """Two training protocols (each a sequence of its own), a current filter bank, a seen and an unseen
    protocol; fit, predictions of every member and ensemble deterministic per seed."""
    from qsnmc import Stimulus, TrainingData, TrainingStimulus
    from qsnmc_plugins.dendplrnn.model import DendPLRNNModel

    dt, n, rng = 1e-4, 25000, np.random.default_rng(3)
    stims, currents = [], {}
    for name in ("a", "b", "c"):
        currents[name] = 200.0 + 80.0 * np.convolve(rng.standard_normal(n + 2000), np.ones(50) / 7, "same")[:n + 2000]
    for name in ("a", "b"):
        reps = [_toy_cell(currents[name][:n], dt, rng) for _ in range(2)]
        stims.append(TrainingStimulus(name, dt, currents[name], (0.0, n * dt), np.array([r[0] for r in reps]),
                                      tuple(r[1] for r in reps)))
    train_data = TrainingData("toy", tuple(stims))
    model = DendPLRNNModel(seed=0, budget=0.02, input_taus_s=[0.02, 0.2])
    record = model.fit(train_data)
    assert record["settings"]["input_taus_s"] == [0.02, 0.2] and len(record["fitted"]["input_sd"]) == 3
    assert np.asarray(record["fitted"]["params"][0]["C"]).shape == (record["details"]["members"][0]["latent_dim_M"], 3)
    for name, window in (("a", (n * dt, (n + 2000) * dt)), ("c", (0.0, (n + 2000) * dt))):
        spikes = model.predict(Stimulus(name, dt, currents[name], window, 2))
        assert np.all(np.diff(spikes) > 0)
        assert spikes.size == 0 or (spikes[0] >= window[0] and spikes[-1] < window[1])
    again = DendPLRNNModel(seed=0, budget=0.02, input_taus_s=[0.02, 0.2])
    again_record = again.fit(train_data)
    assert again_record["curves"] == record["curves"]  # deterministic per seed
    assert again_record["candidates"] == record["candidates"]
    for name, window in (("a", (n * dt, (n + 2000) * dt)), ("c", (0.0, (n + 2000) * dt))):
        stim = Stimulus(name, dt, currents[name], window, 2)
        for predictor in model.predictors:  # every member and ensemble, the same spikes again
            np.testing.assert_array_equal(model.predict_with(stim, predictor), again.predict_with(stim, predictor))


#: a tiny ensemble: two members (tau 5 and none; M = 4, B = 2), short windows, few steps
TINY = {"members": [[5, 4, 2], [0, 4, 2]], "steps": 20, "min_steps": 20, "eval_every": 10, "seq_len": 20,
        "burn_in": 5, "batch_size": 4, "warmup_s": 0.2}


def test_fit_is_bit_identical_per_seed_and_settings_are_checked():
    """Two fits of the same seed give the same predictions (np.array_equal), the same curves and
    candidates: torch is seeded from the model's seed and runs deterministic kernels."""
    from qsnmc import SettingsError, Stimulus, TrainingData, TrainingStimulus
    from qsnmc_plugins.dendplrnn.model import DendPLRNNModel

    dt, n, rng = 1e-4, 12000, np.random.default_rng(5)
    current = 200.0 + 80.0 * np.convolve(rng.standard_normal(n + 3000), np.ones(50) / 7, "same")
    reps = [_toy_cell(current[:n], dt, rng) for _ in range(2)]
    data = TrainingData("toy", (TrainingStimulus("a", dt, current, (0.0, n * dt), np.array([r[0] for r in reps]),
                                                 tuple(r[1] for r in reps)),))
    stim = Stimulus("a", dt, current, (n * dt, (n + 3000) * dt), 2)
    fits = []
    for _ in range(2):
        model = DendPLRNNModel(seed=3, budget=0.01, **TINY)
        record = model.fit(data)
        fits.append((model.predict(stim), [model.predict_with(stim, p) for p in sorted(model.predictors)], record))
    assert np.array_equal(fits[0][0], fits[1][0])
    assert all(np.array_equal(a, b) for a, b in zip(fits[0][1], fits[1][1]))
    assert fits[0][2]["curves"] == fits[1][2]["curves"] and fits[0][2]["candidates"] == fits[1][2]["candidates"]
    assert [c["choice"]["predictor"] for c in record["candidates"]][:2] == ["member 0", "member 1"]
    assert record["settings"]["members"] == [[5, 4, 2], [0, 4, 2]]
    assert [m["latent_dim_M"] for m in record["details"]["members"]] == [4, 4]
    with pytest.raises(SettingsError, match="members"):
        DendPLRNNModel(members=[[5, 4]] * 2 + [["x", 1, 2]])


# ----------------------------------------------------------------- the embedded challenge
@pytest.mark.slow
def test_quick_fit_beats_poisson_on_embedded_challenge(embedded_challenge):
    from qsnmc.scoring.evaluation import score_predictions
    from qsnmc_plugins.dendplrnn.model import DendPLRNNModel

    ch = embedded_challenge
    model = DendPLRNNModel(seed=0, budget=0.1)
    record = model.fit(ch.training_data())
    assert record["held_out"]["performance"] > 0.2
    loss = record["curves"]["member 0 loss"]["y"]
    assert len(loss) == record["details"]["training"]["iterations_per_member"] == 90
    assert all(math.isfinite(v) for v in loss)
    stim = ch.test_stimuli()[0]
    spikes = model.predict(stim)
    assert np.all(np.diff(spikes) > 0)
    assert spikes.size == 0 or (spikes[0] >= stim.window_s[0] and spikes[-1] < stim.window_s[1])
    perf = score_predictions(ch, {stim.name: spikes}).performance
    assert perf > 0.2, f"test Gamma/R {perf:.3f}"
