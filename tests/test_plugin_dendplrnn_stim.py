"""dendplrnn: the fast rollout's gradients, per-stimulus windows, the spike likelihood, the ensemble."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from qsnmc import coincidence_factor
from qsnmc_plugins.dendplrnn.fast_rollout import fast_rollout
from qsnmc_plugins.dendplrnn.freerun import NetworkParams, free_run
from qsnmc_plugins.dendplrnn.heldout import mean_run
from qsnmc_plugins.dendplrnn.network import DendPLRNN
from qsnmc_plugins.dendplrnn.preprocessing import Scaling
from qsnmc_plugins.dendplrnn.sequences import make_batch
from qsnmc_plugins.dendplrnn.training import TrainConfig, forcing_schedule, new_state, train
from qsnmc_plugins.hazard.readout import Readout, spikes_from_hazard
from qsnmc_plugins.hazard.targets import spike_fraction
from qsnmc_plugins.hazard.windows import StimulusSequence, sample_windows


@pytest.mark.parametrize("z0_from_data", [True, False])
def test_fast_rollout_matches_autograd_rollout_and_its_gradients(z0_from_data):
    """Hand-written backward: same predictions and parameter gradients as autograd (float64), from a
    start state whose observed unit is the data's or not (step 0 forced either way)."""
    g = torch.Generator().manual_seed(0)
    net = DendPLRNN(7, 3, n_in=2, generator=g).double()
    T, N = 60, 4
    s = torch.randn(N, T, 2, generator=g, dtype=torch.float64)
    x = torch.randn(N, T, 1, generator=g, dtype=torch.float64)
    forcing = torch.from_numpy(forcing_schedule(T, 9, 5))
    assert bool(forcing[0])
    z0 = torch.cat([x[:, 0] if z0_from_data else torch.zeros(N, 1, dtype=torch.float64),
                    torch.zeros(N, 6, dtype=torch.float64)], dim=1)
    w = torch.randn(T, dtype=torch.float64)

    def grads(fast: bool):
        net.zero_grad()
        pred = fast_rollout(net, z0, s, x, forcing)[..., :1] if fast else net.rollout(z0, s, x, forcing)
        loss = ((pred[..., 0] - x[..., 0]) ** 2 * w).sum()
        loss.backward()
        return pred.detach(), {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}

    ref_pred, ref = grads(False)
    pred, got = grads(True)
    torch.testing.assert_close(pred, ref_pred)
    for k in ("A", "W", "h0", "C", "alpha", "thresholds"):
        torch.testing.assert_close(got[k], ref[k], rtol=1e-9, atol=1e-9)
    assert got["thresholds"].abs().sum() > 0 and got["alpha"].abs().sum() > 0  # the basis' gradients are real


def test_fast_rollout_gradcheck_with_hazard():
    g = torch.Generator().manual_seed(1)
    net = DendPLRNN(4, 2, n_in=1, generator=g).double()
    T = 25
    s = torch.randn(2, T, 1, generator=g, dtype=torch.float64)
    x = torch.randn(2, T, 1, generator=g, dtype=torch.float64)
    forcing = torch.from_numpy(forcing_schedule(T, 6, 3))
    z0 = torch.cat([x[:, 0], torch.zeros(2, 3, dtype=torch.float64)], dim=1)
    names = [k for k, _ in net.named_parameters()]

    # functional form: the parameters enter through fast_rollout's tensors
    def rollout(A, W, h0, C, alpha, thresholds, hw, hb):
        class P:  # a parameter holder with the network's interface
            pass
        p = P()
        p.A, p.W, p.h0, p.C, p.alpha, p.thresholds = A, W, h0, C, alpha, thresholds
        p.m, p.n_obs, p.offdiag = net.m, net.n_obs, net.offdiag
        p.drives = lambda inputs: inputs @ C.T + h0
        states = fast_rollout(p, z0, s, x, forcing)
        return torch.sigmoid(states @ hw + hb)

    params = [p.detach().clone().requires_grad_() for p in net.parameters()]
    params[6] = torch.randn(4, generator=g, dtype=torch.float64).requires_grad_()  # a non-zero hazard readout
    assert torch.autograd.gradcheck(rollout, params, eps=1e-6, atol=1e-6)


# ----------------------------------------------------------------- per-stimulus sequences
def test_a_batch_row_is_one_repetition_of_one_stimulus():
    seqs = []
    for i, (n, reps) in enumerate(((300, 2), (1000, 3), (120, 4))):  # inputs: (stimulus, step); voltage: repetition
        inputs = np.stack([np.full(n, i, np.float32), np.arange(n, dtype=np.float32)], axis=1)
        voltage = np.repeat(np.arange(reps, dtype=np.float32)[:, None] + 10 * i, n, axis=1)
        seqs.append(StimulusSequence(f"s{i}", inputs, np.full(n, 0.1 * i, np.float32), 0, n, voltage,
                                     np.ones((reps, n), np.float32)))
    windows = sample_windows(seqs, 64, 110, np.random.default_rng(0), per_repetition=True)
    x, s, w, y = make_batch(seqs, windows, 110)
    assert x.shape == (64, 110, 1) and s.shape == (64, 110, 2) and w.shape == y.shape == (64, 110)
    for win, si, xi, yi in zip(windows, s, x, y):
        assert np.all(si[:, 0] == win.stimulus) and np.allclose(yi, 0.1 * win.stimulus)  # that one stimulus
        assert np.array_equal(si[:, 1], np.arange(win.start, win.start + 110))  # its contiguous steps
        assert np.all(xi[:, 0] == win.rep + 10 * win.stimulus)  # one repetition of it
    assert {win.stimulus for win in windows} == {0, 1, 2}


# ----------------------------------------------------------------- the spike likelihood
def _escape_rate_neuron(n: int, reps: int, rng: np.random.Generator):
    """A GLM-like escape-rate neuron: p(spike in 1 ms) = sigmoid(-5 + 3 u_f), u_f the 10-ms filtrate
    of an OU current; returns (current, true probability, spike steps per repetition)."""
    a = np.exp(-1 / 5.0)
    u = np.zeros(n)
    e = rng.standard_normal(n)
    for k in range(1, n):
        u[k] = a * u[k - 1] + np.sqrt(1 - a * a) * e[k]
    b = np.exp(-1 / 10.0)
    uf = np.zeros(n)
    for k in range(1, n):
        uf[k] = b * uf[k - 1] + (1 - b) * u[k]
    uf /= uf.std()
    prob = 1 / (1 + np.exp(-(-5.0 + 3.0 * uf)))
    spikes = [np.flatnonzero(rng.random(n) < prob) for _ in range(reps)]
    return u.astype(np.float32), prob, spikes


@pytest.mark.slow
def test_spike_likelihood_recovers_an_escape_rate_neuron():
    """Trained on the spike likelihood alone, the hazard read from the latent state tracks the true
    firing probability on held-out time, and its peak-picked spike train beats chance."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n_fit, n_test, reps = 8000, 3000, 8
    u, prob, spikes = _escape_rate_neuron(n_fit + n_test, reps, rng)
    fit_trains = [s[s < n_fit] * 1e-3 for s in spikes]
    target = spike_fraction(fit_trains, n_fit, 1e-3, edge_tolerance=1e-9)
    seq = StimulusSequence("glm", u[:n_fit, None], target, 0, n_fit, np.zeros((reps, n_fit), np.float32),
                           np.ones((reps, n_fit), np.float32))
    cfg = TrainConfig(m=8, n_bases=2, tau=0, seq_len=150, burn_in=30, batch_size=32, lr=1e-2,
                      spike_loss_weight=1.0, base_rate=float(target.mean()))
    st = new_state(cfg, 0, torch.device("cpu"))
    train(st, [seq], 250, lambda net: 0.0, 250, torch.device("cpu"))
    p = NetworkParams.from_module(st.net)
    _, hazard = free_run(p, u[:, None].astype(np.float64), np.zeros((u.size, 1)), np.arange(u.size) < 30)
    test = slice(n_fit, None)
    r = np.corrcoef(hazard[test], prob[test])[0, 1]
    assert r > 0.6, f"correlation of the learned and true hazard {r:.2f}"
    # spike times from the hazard against the held-out repetitions, and against shuffled chance
    dur = n_test * 1e-3
    recorded = [(s[s >= n_fit] - n_fit) * 1e-3 for s in spikes]

    def gamma(train: np.ndarray) -> float:
        return float(np.mean([coincidence_factor(rec, train, 0.004, duration=dur) for rec in recorded]))

    # the held-out spikes' Bernoulli log-likelihood: the learned hazard against a constant rate (chance)
    y = spike_fraction(recorded, n_test, 1e-3, edge_tolerance=1e-9).astype(np.float64)
    h, c = np.clip(hazard[test], 1e-6, 1 - 1e-6), np.clip(target.mean(), 1e-6, 1 - 1e-6)
    ll = np.mean(y * np.log(h) + (1 - y) * np.log(1 - h))
    ll_chance = np.mean(y * np.log(c) + (1 - y) * np.log(1 - c))
    assert ll > ll_chance, f"log-likelihood per step {ll:.4f} vs constant rate {ll_chance:.4f}"
    # peak-picked spike times from the hazard against randomly placed ones of the same count
    pred = spikes_from_hazard(hazard[test], 0.0, 1e-3, Readout(1.0, float(np.quantile(hazard[test], 0.97)), 3.0),
                              (0.0, dur))
    g_pred = gamma(pred)
    g_chance = np.mean([gamma(np.sort(rng.uniform(0, dur, pred.size))) for _ in range(5)])
    assert g_pred > g_chance + 0.05, f"Gamma {g_pred:.3f} vs chance {g_chance:.3f}"


# ----------------------------------------------------------------- the ensemble
def test_ensemble_output_is_the_mean_of_its_members_before_detection():
    nets = [DendPLRNN(5, 2, n_in=1, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    for k, net in enumerate(nets):
        with torch.no_grad():
            net.hazard_w.normal_(generator=torch.Generator().manual_seed(10 + k))
    params = [NetworkParams.from_module(n) for n in nets]
    sc = Scaling(10, -20.0, -60.0, 5.0, 0.0, 1.0)
    x = np.random.default_rng(0).standard_normal((500, 1))
    v, h = mean_run(params, x, None, None, sc)
    runs = [free_run(p, x) for p in params]
    np.testing.assert_allclose(v, np.mean([sc.to_mV(r[0]) for r in runs], axis=0))
    np.testing.assert_allclose(h, np.mean([r[1] for r in runs], axis=0))


def test_exploding_free_run_with_hazard_gives_no_spike_times():
    """A member whose free run explodes makes the ensemble's run fail loudly (a failed row), not
    return a garbage hazard."""
    from qsnmc_plugins.dendplrnn.freerun import FreeRunDiverged

    good = NetworkParams.from_module(DendPLRNN(3, 2, generator=torch.Generator().manual_seed(0)))
    bad = NetworkParams(np.array([1.5, 0.5]), np.zeros((2, 2)), np.zeros(2), np.ones((2, 1)), np.ones(1),
                        np.zeros((1, 2)), 1, np.ones(2), 0.0)
    sc = Scaling(10, -20.0, -60.0, 5.0, 0.0, 1.0)
    with pytest.raises(FreeRunDiverged, match="diverged"):
        mean_run([bad], np.ones((5000, 1)), None, None, sc)
    v, h = mean_run([good], np.ones((5000, 1)), None, None, sc)  # the healthy member alone runs
    assert np.all(np.isfinite(v)) and np.all((h >= 0) & (h <= 1))
    rec = NetworkParams.from_record(bad.as_record())  # the record round-trips, hazard included
    np.testing.assert_array_equal(rec.hazard_w, bad.hazard_w)
    assert rec.hazard_b == bad.hazard_b
