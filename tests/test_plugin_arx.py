"""Tests of the ``arx`` plugin: identification, stability, spike rule, and real fits."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from scipy.signal import lfilter

from qsnmc import Stimulus, TrainingData, TrainingStimulus
from qsnmc import coincidence_factor
from qsnmc_plugins.arx.free_run import generate_spikes, spike_kernel, teacher_forced_voltage
from qsnmc_plugins.arx.identification import ArxOrders, GramAccumulator, Series
from qsnmc_plugins.arx.model import ArxModel
from qsnmc_plugins.arx.settings import ArxSettings
from qsnmc_plugins.arx.spike_basis import spike_basis, spike_features
from qsnmc_plugins.arx.spike_cut import cut_spikes
from qsnmc_plugins.arx.stability import is_stable, pole_radius, stabilise

STEP = 0.001


def test_recovers_known_arx_coefficients():
    """Least squares on a simulated ARX process returns its a, b, c and d."""
    rng = np.random.default_rng(0)
    n = 30_000
    a_true = np.array([1.5, -0.6])  # poles 0.6 and 0.9... inside the unit circle
    b_true = np.array([0.02, 0.01, -0.005])
    basis = spike_basis(STEP, ArxSettings())
    w_true = np.zeros(8)
    w_true[:4] = [-10.0, -6.0, -3.0, -1.0]
    w_true[4:] = [-2.0, -1.5, -1.0, -0.5]
    c_true = basis[:, :8] @ w_true
    current = rng.normal(0.0, 100.0, n)
    onsets = np.sort(rng.choice(np.arange(100, n - 100), 150, replace=False))
    d_true = 0.7
    x = lfilter(b_true, [1.0], current) + spike_features(onsets, n, basis[:, :8]) @ w_true + d_true
    x += rng.normal(0.0, 0.05, n)  # equation noise
    v = lfilter([1.0], np.concatenate([[1.0], -a_true]), x)
    gram = GramAccumulator(4, 5, basis, v_ref_mV=0.0, i_ref_pA=0.0)
    gram.add(Series(v, current, onsets, 0), slice(0, n))
    fit = gram.solve(ArxOrders(2, 3, 8, ridge=1e-9), STEP)
    np.testing.assert_allclose(fit.a, a_true, atol=2e-3)
    np.testing.assert_allclose(fit.b, b_true, atol=2e-4)
    np.testing.assert_allclose(fit.c[:50], c_true[:50], atol=0.05)
    assert fit.d == pytest.approx(d_true, abs=0.05)


def test_teacher_forced_voltage_matches_direct_filter():
    """The sparse spike path equals filtering the spike train with [0, c] / A."""
    rng = np.random.default_rng(1)
    basis = spike_basis(STEP, ArxSettings())
    gram = GramAccumulator(2, 2, basis, 0.0, 0.0)
    n = 5000
    onsets = np.sort(rng.choice(n - 10, 20, replace=False))
    v = rng.normal(size=n).cumsum() * 0.01
    gram.add(Series(v, rng.normal(size=n), onsets, 0), slice(0, n))
    fit = gram.solve(ArxOrders(2, 2, 6, 1e-3), STEP)
    s = np.zeros(n)
    s[onsets] = 1.0
    direct = lfilter(np.concatenate([[0.0], fit.c]), np.concatenate([[1.0], -fit.a]), s)
    no_spikes = teacher_forced_voltage(fit, np.zeros(n), [np.array([], int)])[0]
    tf = teacher_forced_voltage(fit, np.zeros(n), [onsets])[0]
    np.testing.assert_allclose(tf - no_spikes, direct, atol=1e-9)
    single = teacher_forced_voltage(fit, np.zeros(n), [np.array([100])])[0] - no_spikes
    g = spike_kernel(fit)
    np.testing.assert_allclose(g[:500], single[101:601], atol=1e-9)


def test_unstable_filter_is_detected_and_stabilised():
    a = np.array([2.1, -1.05])  # poles at 1.05 +- 0.22j: outside the unit circle
    assert pole_radius(a) > 1.0 and not is_stable(a, 0.999)
    a_new, message = stabilise(a, 0.999)
    assert "unstable" in message
    assert pole_radius(a_new) <= 0.999 + 1e-9 and is_stable(a_new, 0.999)
    same, none = stabilise(np.array([0.5]), 0.999)
    assert none == "" and same[0] == 0.5


def test_spike_cut_removes_the_action_potential():
    v = np.full(100, -60.0)
    v[50:53] = [10.0, -20.0, -70.0]  # a spike crossing 0 mV in bin 50
    out = cut_spikes(v, np.array([0.0508]), STEP, 0.0, 0.0005, 0.0025)
    assert out.onsets.tolist() == [49]
    assert out.voltage_mV.max() <= -60.0 + 1e-9
    assert out.cut[50] and not out.cut[49]


def test_generate_spikes_threshold_and_refractoriness():
    drive = np.full(200, -1.0)
    drive[50:] = 1.0  # above threshold from bin 50 on
    kernel = np.full(20, -5.0)  # a spike pushes the voltage 5 mV below for 20 bins
    onsets, frac = generate_spikes(drive, kernel, refractory_bins=1)
    assert onsets.tolist() == [50, 71, 92, 113, 134, 155, 176, 197]
    assert frac[0] == pytest.approx(0.5)  # crossing halfway between -1 and +1


def _lif_recordings(current_pA: np.ndarray, n_reps: int, dt: float, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A noisy LIF with an after-hyperpolarisation and drawn spikes (to 0 mV crossings), at ``dt``."""
    rng = np.random.default_rng(seed)
    n = current_pA.size
    v = np.full(n_reps, -70.0)
    ahp = np.zeros(n_reps)
    out = np.zeros((n_reps, n))
    tau, r_m, theta = 0.02, 0.1, -52.0
    for k in range(n):
        v += dt / tau * (-70.0 - v + r_m * current_pA[k] - ahp) + rng.normal(0, 0.4, n_reps)
        ahp *= np.exp(-dt / 0.1)
        out[:, k] = v
        fired = v >= theta
        out[fired, k] = 20.0
        v[fired] = -65.0
        ahp[fired] += 4.0
    spikes = [(np.flatnonzero((row[1:] >= 0) & (row[:-1] < 0)) + 0.5) * dt for row in out]
    return out, spikes


def _ou_current(n: int, dt: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = lfilter([1.0], [1.0, -np.exp(-dt / 0.005)], rng.normal(size=n)) * 0.3
    return 200.0 + 120.0 * x / x.std()


def test_multi_stimulus_fit_predicts_an_unseen_stimulus():
    """2007 style: 1 kHz, two training stimuli, a test stimulus never seen, predicted from rest."""
    dt, n = 0.001, 10_000
    stims = []
    for j in range(2):
        current = _ou_current(n, dt, seed=10 + j)
        v, spikes = _lif_recordings(current, 3, dt, seed=20 + j)
        stims.append(TrainingStimulus(f"s{j}", dt, current, (0.0, n * dt), v, tuple(spikes)))
    train = TrainingData("toy2007", tuple(stims), delta_s=0.004)
    model = ArxModel(seed=0, budget=0.05)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a stable fit needs no repair here
        record = model.fit(train)
    assert time.perf_counter() - t0 < 30
    for key in ("n_voltage_lags", "a", "b_mV_per_pA", "spike_rule", "pole_radius"):
        assert key in record["fitted"]
    assert record["fitted"]["pole_radius"] < 1.0
    assert record["settings"]["count_penalty"] == 1.0 and record["candidates"]
    assert not record["details"]["stability"]["final_fit_stabilised"]
    per = record["held_out"]["per_stimulus"]
    assert sorted(per) == ["s0", "s1"] and all(row["n_recorded"] > 0 for row in per.values())
    assert all(0.5 < row["count_ratio"] < 2.0 for row in per.values())  # a count-penalised rule fires at the cell's rate
    search = record["details"]["spike_rule_search"]
    assert set(search["bounds"]) == {"threshold_mV", "adaptation_mV", "adaptation_tau_s", "latency_ms"}
    test_current = _ou_current(n, dt, seed=99)
    _, test_spikes = _lif_recordings(test_current, 3, dt, seed=98)
    pred = model.predict(Stimulus("unseen", dt, test_current, (0.0, n * dt), 3))
    assert pred.ndim == 1 and np.all(np.diff(pred) > 0) and pred.min() >= 0 and pred.max() <= n * dt
    gamma = np.mean([coincidence_factor(r, pred, 0.004, duration=n * dt) for r in test_spikes])
    assert gamma > 0.3


@pytest.mark.slow
def test_beats_poisson_on_the_embedded_challenge(embedded_challenge):
    from qsnmc import evaluate_in_process

    result = evaluate_in_process(ArxModel(seed=0, budget=0.1), embedded_challenge)
    assert result.record["held_out"]["performance"] > 0.2
    assert result.score.performance > 0.2
