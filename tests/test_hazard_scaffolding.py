"""The recurrent entries' shared scaffolding (qsnmc_plugins.hazard): inputs, targets, windows, restarts
and rollbacks, the readout; each piece is used by both gru and dendplrnn."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qsnmc_plugins.hazard.inputs import input_columns
from qsnmc_plugins.hazard.members import member_curves, member_seed
from qsnmc_plugins.hazard.readout import Readout, spikes_from_hazard
from qsnmc_plugins.hazard.recovery import Snapshots
from qsnmc_plugins.hazard.targets import base_rate_entropy, base_rate_logit, spike_fraction
from qsnmc_plugins.hazard.voltage import VoltageScaling, spike_weights
from qsnmc_plugins.hazard.windows import StimulusSequence, sample_windows


# ----------------------------------------------------------------- inputs and targets
def test_inputs_are_the_current_and_its_causal_filtrates_with_unit_dc_gain_from_steady_state():
    dt, taus = 1e-3, (0.01, 0.1)
    s = np.full(3000, 0.5)
    s[1000:] = 2.0  # a step at 1 s
    bank = input_columns(s, dt, taus)
    assert bank.shape == (3000, 3)
    np.testing.assert_array_equal(bank[:, 0], s)
    assert np.all(bank[:1000] == 0.5)  # started at steady state: no start-up transient, nothing before the step
    for j, tau in enumerate(taus, start=1):
        k = 1000 + int(round(tau / dt)) - 1  # one time constant after the step: 1 - 1/e of the way
        assert bank[k, j] == pytest.approx(0.5 + 1.5 * (1 - np.exp(-1)), rel=0.01)
    assert bank[-1, 1] == pytest.approx(2.0, rel=1e-6)


def test_spike_fraction_counts_repetitions_not_spikes():
    frac = spike_fraction([np.array([0.0015, 0.0018, 0.004]), np.array([0.0012])], 6, 1e-3)
    assert frac.dtype == np.float32
    np.testing.assert_array_equal(frac, np.array([0, 1.0, 0, 0, 0.5, 0], np.float32))
    f = spike_fraction([np.array([1.0105, 1.0109, 1.030]), np.array([1.0101]), np.array([])], 40, 1e-3, t0_s=1.0)
    assert f[10] == pytest.approx(2 / 3) and f[30] == pytest.approx(1 / 3) and f.sum() == pytest.approx(1.0)
    assert not spike_fraction([], 4, 1e-3).any()


def test_a_spike_on_a_bin_edge_counts_in_the_next_bin_only_with_an_edge_tolerance():
    """2.001 s (sample 20010 at 0.1 ms) divided by 1 ms rounds to 2000.9999999999998: without a tolerance
    the spike falls in bin 2000, with one in bin 2001 (gru bins without, dendplrnn with 1e-9)."""
    t = np.array([20010 * 1e-4])
    assert np.flatnonzero(spike_fraction([t], 2100, 1e-3)).tolist() == [2000]
    assert np.flatnonzero(spike_fraction([t], 2100, 1e-3, edge_tolerance=1e-9)).tolist() == [2001]


def test_the_base_rate_gives_the_initial_bias_and_the_loss_scale():
    for p in (0.003, 0.2):
        assert 1 / (1 + math.exp(-base_rate_logit(p))) == pytest.approx(p, rel=1e-12)
        assert base_rate_entropy(p) == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)))
    assert base_rate_logit(0.0) == base_rate_logit(1e-4) and base_rate_logit(0.9) == 0.0  # clipped to [1e-4, 0.5]
    assert base_rate_entropy(0.9) == pytest.approx(math.log(2))


def test_voltage_scaling_round_trip_and_spike_weights():
    rng = np.random.default_rng(0)
    v = rng.normal(-60, 3, (2, 1000))
    v[:, 500:505] = 30.0
    sc = VoltageScaling.fit([v], 10, -20.0)
    x = sc.voltage(v)
    assert x.shape == (2, 100) and x.max() == pytest.approx(sc.from_mV(-20.0), abs=1e-5)
    np.testing.assert_allclose(sc.to_mV(x), np.minimum(v.reshape(2, 100, 10).max(-1), -20.0), atol=1e-3)
    w = spike_weights([np.array([0.0505]), np.array([])], 100, 1e-3, 0.0, 0.25)
    heavy = w > 1
    assert heavy[0, 49] and heavy[0, 50] and heavy.sum() == 2
    assert w[heavy].sum() / w.sum() == pytest.approx(0.25)


# ----------------------------------------------------------------- windows never cross stimuli
def _sequences() -> list[StimulusSequence]:
    """Three stimuli of different lengths and repetitions whose inputs encode (stimulus, bin), voltages
    (repetition) and targets (stimulus); targets in bins [5, n - 10)."""
    seqs = []
    for i, (n, reps) in enumerate(((300, 2), (1000, 3), (120, 4))):
        inputs = np.stack([np.full(n, i, np.float32), np.arange(n, dtype=np.float32)], axis=1)
        voltage = np.repeat(np.arange(reps, dtype=np.float32)[:, None] + 10 * i, n, axis=1)
        seqs.append(StimulusSequence(f"s{i}", inputs, np.full(n, 0.1 * i, np.float32), 5, n - 10, voltage,
                                     np.ones((reps, n), np.float32)))
    return seqs


@pytest.mark.parametrize("per_repetition", [False, True])
def test_windows_stay_inside_one_stimulus_span_of_targets(per_repetition):
    seqs = _sequences()
    rng = np.random.default_rng(0)
    length, seen = 100, set()
    for _ in range(30):
        for win in sample_windows(seqs, 16, length, rng, per_repetition):
            q = seqs[win.stimulus]
            assert q.target_start <= win.start and win.start + length <= q.target_stop
            assert (win.rep is not None) == per_repetition and (win.rep or 0) < q.n_reps
            seen.add(win.stimulus)
    assert seen == {0, 1, 2}
    with pytest.raises(ValueError, match="no stimulus"):
        sample_windows(seqs, 4, 986, rng, per_repetition)  # more target bins than any stimulus holds


@pytest.mark.parametrize("per_repetition", [False, True])
def test_window_draws_are_a_weighted_choice_of_stimuli_then_per_window_repetition_and_start(per_repetition):
    """The generator's calls, in order (a fit's windows, hence its predictions, rest on them): one
    ``choice`` of the stimuli weighted by the windows each holds (times its repetitions with
    ``per_repetition``), then per window its repetition (with ``per_repetition``) and its start."""
    seqs = _sequences()
    windows = sample_windows(seqs, 12, 100, np.random.default_rng(7), per_repetition)
    rng = np.random.default_rng(7)
    starts = [186, 886, 6]  # target bins minus the length plus one
    held = np.array([n * (q.n_reps if per_repetition else 1) for n, q in zip(starts, seqs)], float)
    for win, i in zip(windows, rng.choice(3, size=12, p=held / held.sum())):
        rep = int(rng.integers(0, seqs[i].n_reps)) if per_repetition else None
        assert (win.stimulus, win.rep, win.start) == (i, rep, 5 + int(rng.integers(0, starts[i])))


# ----------------------------------------------------------------- restarts and rollbacks
def test_snapshots_restore_the_network_optimiser_and_average_and_spot_a_collapse():
    torch.manual_seed(0)
    net, average = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    snaps = Snapshots(net, opt, average)
    assert snaps.good.step == 0 and snaps.at_best is None
    before = [p.detach().clone() for p in (*net.parameters(), *average.parameters())]
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    opt.param_groups[0]["lr"] = 0.05
    with torch.no_grad():
        average.weight.add_(1.0)
    snaps.at_best = snaps.take(1)
    assert snaps.load(snaps.good) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, (*net.parameters(), *average.parameters())))
    assert opt.param_groups[0]["lr"] == 0.1 and not opt.state  # the optimiser as it was: no step taken
    assert snaps.load(snaps.at_best) == 1 and opt.param_groups[0]["lr"] == 0.05 and len(opt.state) == 2
    assert Snapshots(net, opt, None).take(3).states[2] is None  # no average: nothing kept for it
    assert snaps.collapsed(0.3, 0.5, 0.1, 0, 3) and not snaps.collapsed(0.45, 0.5, 0.1, 0, 3)
    assert not snaps.collapsed(0.3, 0.5, 0.0, 0, 3) and not snaps.collapsed(0.3, 0.5, 0.1, 3, 3)
    assert not Snapshots(net).collapsed(0.3, 0.5, 0.1, 0, 3)  # no best state to go back to



def test_a_snapshot_loaded_twice_restores_the_same_optimiser_state():
    """Loading a snapshot and training on must not move the snapshot: a second rollback to it
    finds the optimiser's moments and step count as they were taken."""
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)

    def train_step():
        opt.zero_grad()
        net(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()

    train_step()
    snaps = Snapshots(net, opt)
    snaps.at_best = snaps.take(1)
    taken = {k: v.clone() for k, v in opt.state[net.weight].items()}
    for _ in range(2):  # two rollbacks to the same state, training in between
        snaps.load(snaps.at_best)
        assert all(torch.equal(opt.state[net.weight][k], v) for k, v in taken.items())
        train_step()
        train_step()

# ----------------------------------------------------------------- members
def test_members_seeds_and_curves():
    assert [member_seed(2, k) for k in range(3)] == [2000, 2001, 2002]
    curves = member_curves(1, [3.0, 2.0, 1.5], "step", "training BCE", [2, 3],
                           {"held-out P": ([0.4, 0.5], "held-out Gamma/R")})
    assert list(curves) == ["member 1 loss", "member 1 held-out P"]
    assert curves["member 1 loss"]["x"] == [1.0, 2.0, 3.0] and curves["member 1 held-out P"]["y"] == [0.4, 0.5]
    with pytest.raises(ValueError):
        member_curves(0, [1.0], "step", "loss", [1, 2], {"held-out P": ([0.5], "P")})


# ----------------------------------------------------------------- readout
def test_readout_places_spikes_at_hazard_peaks_inside_window():
    h = np.full(1000, 0.001)
    for k, w in ((100, 0.6), (103, 0.6), (400, 0.8), (990, 0.9)):
        h[k] = w
    t = spikes_from_hazard(h, 2.0, 1e-3, Readout(0.0, 0.3, 6.0), (2.0, 2.95))
    # 100 and 103 are within the 6 ms gap: one spike; 990 lies outside the window
    assert t.size == 2 and np.all(np.diff(t) > 0) and t.min() >= 2.0 and t.max() < 2.95
    assert abs(t[1] - (2.0 + 400.5e-3)) < 1e-4


def test_count_matched_readout_keeps_the_hazards_expected_count_of_highest_peaks():
    # ten bumps of rising height on a flat hazard; the window holds bins 100-899 only
    h = np.full(1000, 1e-4)
    bumps = np.arange(50, 1000, 100)  # 50, 150, ..., 950
    h[bumps] = np.linspace(0.1, 1.0, bumps.size)
    inside = (bumps >= 100) & (bumps < 900)
    expected = float(h[100:900].sum())  # spikes per repetition the hazard expects in the window
    t = spikes_from_hazard(h, 0.0, 1e-3, Readout(0.0, 0.0, 3.0, count_scale=1.0), (0.1, 0.9))
    assert t.size == round(expected)
    # the highest peaks inside the window are the ones kept
    kept = np.sort(bumps[inside][np.argsort(-h[bumps[inside]])][: t.size])
    assert np.allclose(t, (kept + 0.5) * 1e-3, atol=1e-4)
    half = spikes_from_hazard(h, 0.0, 1e-3, Readout(0.0, 0.0, 3.0, count_scale=0.5), (0.1, 0.9))
    assert half.size == round(0.5 * expected) and set(np.round(half, 4)) <= set(np.round(t, 4))
    # with a low hazard the rule predicts no spike, not the noise's peaks
    assert spikes_from_hazard(np.full(1000, 1e-4), 0.0, 1e-3, Readout(0.0, 0.0, 3.0, 1.0), (0.1, 0.9)).size == 0


def test_the_ensemble_rule_keeps_every_member_averaged_and_the_best_rule_the_highest_held_out_p():
    from qsnmc_plugins.hazard.predictors import compare_predictors, kept_predictor

    class _Readout:
        def as_record(self) -> dict:
            return {}

    p_of = {(0,): 0.9, (1,): 0.5, (2,): 0.7, (0, 2): 0.85, (0, 1, 2): 0.8}
    predictors = compare_predictors(3, lambda idx: (_Readout(), p_of[idx]))
    assert kept_predictor(predictors, 3, "best").name == "member 0"
    assert kept_predictor(predictors, 3, "ensemble").name == "ensemble"
    # one member alone: its own network is the whole ensemble
    single = compare_predictors(1, lambda idx: (_Readout(), 0.4))
    assert kept_predictor(single, 1, "ensemble").name == "member 0"
    # a member whose free run diverged (non-finite P) is left out of every ensemble; the rule falls back to the best
    p_of[(1,)] = float("nan")
    predictors = compare_predictors(3, lambda idx: (_Readout(), p_of[idx]))
    assert [p.name for p in predictors][-1] == "ensemble of best 2"
    assert kept_predictor(predictors, 3, "ensemble").name == "member 0"
    with pytest.raises(ValueError, match="predictor rule"):
        kept_predictor(predictors, 3, "mean")
