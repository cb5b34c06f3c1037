"""Tests of the MAT plugin (multi-timescale adaptive threshold, Kobayashi et al. 2009)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.signal import lfilter

from qsnmc import Stimulus, TrainingData, TrainingStimulus, lowpass
from qsnmc.scoring.metrics import coincidence_factor, intrinsic_reliability, repetition_gammas

from qsnmc_plugins.mat import qsnmc_register_models
from qsnmc_plugins.mat.membrane import fit_membrane
from qsnmc_plugins.mat.model import MATModel
from qsnmc_plugins.mat.threshold import simulate_spike_indices

os.environ.setdefault("QSNMC_PROGRESS", "0")

TRUE_TAU_M_S = 0.010
TRUE_R_GOHM = 0.1
TRUE_REST_MV = -65.0
TRUE_OMEGA_MV = -55.0
TRUE_ALPHAS_MV = (8.0, 1.5)
#: the published threshold time constants (s) and refractory period (s)
PUBLISHED_TAUS_S = (0.010, 0.200)
REFRACTORY_S = 0.002


def _ou(rng: np.random.Generator, n: int, dt_s: float, tau_s: float, sd: float) -> np.ndarray:
    a = np.exp(-dt_s / tau_s)
    return lfilter([sd * np.sqrt(1 - a * a)], [1.0, -a], rng.standard_normal(n))


def _mat_recording(rng, current_pA, dt_s, n_reps, noise_mV=1.0):
    """Voltage and spike times of a known MAT neuron; each repetition has its own intrinsic noise."""
    v_true = TRUE_REST_MV + TRUE_R_GOHM * lowpass(current_pA, dt_s, TRUE_TAU_M_S)
    volts, trains = [], []
    for _ in range(n_reps):
        v = v_true + _ou(rng, current_pA.size, dt_s, 0.005, noise_mV)
        trains.append(simulate_spike_indices(v, dt_s, TRUE_OMEGA_MV, TRUE_ALPHAS_MV, PUBLISHED_TAUS_S, REFRACTORY_S) * dt_s)
        volts.append(v + rng.normal(0.0, 0.3, v.size))
    return np.array(volts), trains


def _current(rng, n, dt_s):
    return 100.0 + _ou(rng, n, dt_s, 0.005, 120.0)


#: the true membrane time constant as the only candidate, the threshold time constants held
#: (within 0.1 %) at the true ones
FIXED_TAUS = {"membrane_taus_s": [TRUE_TAU_M_S], "threshold_tau_bounds_s": [[0.00999, 0.01001], [0.1998, 0.2002]]}


def test_plugin_registers_the_model():
    (cls,) = qsnmc_register_models()
    assert cls is MATModel and cls.name == "mat"
    model = cls(seed=1, budget=0.1)
    assert model.seed == 1 and model.budget == 0.1


def test_threshold_search_matches_a_sample_by_sample_loop():
    rng = np.random.default_rng(3)
    dt = 1e-4
    v = -60.0 + 20.0 * lfilter([0.02], [1.0, -0.98], rng.standard_normal(60_000))
    n_ref = 20
    for omega, alphas in [(-55.0, (5.0, 1.0)), (-58.0, (15.0, 3.0)), (-57.0, (-0.5, 2.0))]:
        level, last, expected = np.zeros(2), -(10**9), []
        decay = np.exp(-dt / np.array([0.010, 0.200]))
        for k in range(v.size):
            level *= decay
            if k - last >= n_ref and v[k] >= omega + level.sum():
                expected.append(k)
                level += alphas
                last = k
        got = simulate_spike_indices(v, dt, omega, alphas, PUBLISHED_TAUS_S, REFRACTORY_S)
        assert len(expected) > 10
        np.testing.assert_array_equal(got, expected)


def test_membrane_least_squares_recovers_resistance_and_rest():
    rng = np.random.default_rng(0)
    dt, n = 1e-4, 50_000
    current = _current(rng, n, dt)
    volts, trains = _mat_recording(rng, current, dt, n_reps=3)
    stim = TrainingStimulus("s", dt, current, (0.0, n * dt), volts, tuple(trains))
    mf = fit_membrane([stim], (TRUE_TAU_M_S,), (0.002, 0.020))
    assert mf.input_resistance_MOhm == pytest.approx(1e3 * TRUE_R_GOHM, rel=0.03)
    assert mf.offset_mV == pytest.approx(TRUE_REST_MV, abs=0.5)
    assert mf.rmse_mV == pytest.approx(1.04, abs=0.15)  # the intrinsic + recording noise


def test_fit_recovers_omega_and_alphas_of_a_known_mat_neuron():
    rng = np.random.default_rng(1)
    dt, duration, split = 1e-4, 15.0, 12.0
    n = int(duration / dt)
    current = _current(rng, n, dt)
    volts, trains = _mat_recording(rng, current, dt, n_reps=4)
    m = int(split / dt)
    train = TrainingData(
        "synthetic", (TrainingStimulus("A", dt, current, (0.0, split), volts[:, :m], tuple(t[t < split] for t in trains)),)
    )
    model = MATModel(seed=0, budget=0.4, n_kernels=2, **FIXED_TAUS)
    record = model.fit(train)
    assert record["settings"]["membrane_taus_s"] == [TRUE_TAU_M_S] and record["fitted"]["tau_m_ms"] == 10.0
    fitted = record["fitted"]
    assert fitted["omega_mV"] == pytest.approx(TRUE_OMEGA_MV, abs=2.0)
    assert fitted["alphas_mV"][0] == pytest.approx(TRUE_ALPHAS_MV[0], rel=0.35)
    assert fitted["alphas_mV"][1] == pytest.approx(TRUE_ALPHAS_MV[1], rel=0.5)
    assert record["held_out"]["performance"] > 0.9
    assert record["held_out"]["per_stimulus"]["A"]["count_ratio"] == pytest.approx(1.0, abs=0.1)
    prediction = model.predict(Stimulus("A", dt, current, (split, duration), 4))
    test = [t[t >= split] for t in trains]
    r = intrinsic_reliability(test, duration=duration - split)
    assert repetition_gammas(test, prediction, duration=duration - split).mean() / r > 0.9


def test_fits_several_stimuli_at_1khz_and_predicts_a_new_one_from_rest():
    rng = np.random.default_rng(2)
    dt, n = 1e-3, 8_000
    stims = []
    for name in ("s0", "s1"):
        current = _current(rng, n, dt)
        volts, trains = _mat_recording(rng, current, dt, n_reps=3)
        stims.append(TrainingStimulus(name, dt, current, (0.0, n * dt), volts, tuple(trains)))
    train = TrainingData("synthetic-2007", tuple(stims), delta_s=0.002)
    model = MATModel(seed=0, budget=0.1)
    record = model.fit(train)
    assert record["fitted"]["model_step_ms"] == pytest.approx(1.0)
    assert set(record["held_out"]["per_stimulus"]) == {"s0", "s1"}
    assert [c["choice"]["n_kernels"] for c in record["candidates"]] == [2, 3]
    current = _current(rng, n, dt)
    _, truth = _mat_recording(rng, current, dt, n_reps=1)
    window = (2.0, 8.0)
    prediction = model.predict(Stimulus("new", dt, current, window, 1))
    assert prediction.size > 0 and np.all(np.diff(prediction) > 0)
    assert prediction[0] >= window[0] and prediction[-1] <= window[1]
    target = truth[0][truth[0] >= window[0]]
    assert coincidence_factor(target, prediction, 0.002, duration=window[1] - window[0]) > 0.4


def test_beats_the_poisson_baseline_on_the_embedded_challenge(embedded_challenge):
    from qsnmc import evaluate_in_process

    result = evaluate_in_process(MATModel(seed=0, budget=0.1), embedded_challenge)
    assert result.record["held_out"]["performance"] > 0.2
    assert result.score.performance > 0.2


def test_settings_are_checked_before_any_work():
    from qsnmc import SettingsError

    with pytest.raises(SettingsError, match="no setting"):
        MATModel(slow_membrane_s=2.0)
    with pytest.raises(SettingsError, match="kernel counts must be 1 to 2"):
        MATModel(n_kernels=3, threshold_tau_bounds_s=[[0.003, 0.06], [0.06, 3.0]])
    assert MATModel(n_kernels=2).kernel_choices == (2,) and MATModel().kernel_choices == (2, 3)
