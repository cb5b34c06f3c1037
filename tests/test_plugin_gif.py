"""Tests of the GIF plugin (generalized integrate-and-fire; Mensi et al. 2012, Pozzorini et al. 2015)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.signal import lfilter

import qsnmc
from qsnmc import TrainingData, TrainingStimulus

from qsnmc_plugins.gif import qsnmc_register_models
from qsnmc_plugins.gif.basis import ExponentialBasis
from qsnmc_plugins.gif.binning import bin_stimulus
from qsnmc_plugins.gif.model import GIFModel
from qsnmc_plugins.gif.readout import STOCHASTIC, FittedGIF, Readout, readout_trains
from qsnmc_plugins.gif.search import Structure, fit_parameters
from qsnmc_plugins.gif.settings import GIFSettings
from qsnmc_plugins.gif.simulate import forced_voltage, simulate_spikes
from qsnmc_plugins.gif.subthreshold import Membrane
from qsnmc_plugins.gif.threshold import EscapeThreshold, VoltageCoupling
from qsnmc_plugins.gif.threshold_mle import NegativeLogLikelihood, fit_threshold, likelihood_data

os.environ.setdefault("QSNMC_PROGRESS", "0")

DT_S = 0.0005          # 2 kHz: the model grid itself
DURATION_S = 30.0
N_REPS = 4
LATENCY_S = 0.002      # threshold crossing -> recorded spike
BASIS = ExponentialBasis.log_spaced(0.003, 10.0, 8)
# the known neuron: its kernels live on three of the basis' exponentials (10 ms, 30 ms, 300 ms)
TRUE_ETA_PA = (0.0, 40.0, 0.0, 20.0, 0.0, 8.0, 0.0, 0.0)
TRUE_GAMMA_MV = (0.0, 6.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0)
TRUE_MEMBRANE = Membrane(C_pF=150.0, gL_nS=7.5, EL_mV=-70.0, eta_basis=BASIS, eta_pA=TRUE_ETA_PA,
                         Vr_mV=-62.0, t_ref_s=LATENCY_S + 0.002)
TRUE_THRESHOLD = EscapeThreshold(VT_mV=-52.0, DV_mV=1.5, gamma_basis=BASIS, gamma_mV=TRUE_GAMMA_MV)
LAGS_S = np.array([0.005, 0.01, 0.03, 0.1, 0.3, 1.0])
SETTINGS = GIFSettings()
#: the known neuron's basis (so that weights compare) and the default refractory period after the spike
STRUCTURE = Structure(BASIS, SETTINGS.refractory_after_spike_s)
RIDGE = SETTINGS.threshold_ridge_per_spike


def _gif_recording(seed: int = 5) -> TrainingData:
    """Voltage and spikes of the known GIF: escape-noise spikes, 0.5 mV recording noise, 20 mV spike peaks."""
    rng = np.random.default_rng(seed)
    n = int(round(DURATION_S / DT_S))
    a = np.exp(-DT_S / 0.003)
    current = 300.0 + lfilter([150.0 * np.sqrt(1 - a * a)], [1.0, -a], rng.standard_normal(n))
    volts, trains = [], []
    for _ in range(N_REPS):
        events = simulate_spikes(TRUE_MEMBRANE, TRUE_THRESHOLD, current, DT_S, rng=rng)
        v, _ = forced_voltage(TRUE_MEMBRANE, current, DT_S, events)
        v = np.where(np.isfinite(v), v, TRUE_MEMBRANE.Vr_mV)
        peaks = events + int(round(LATENCY_S / DT_S))
        v[peaks[peaks < n]] = 20.0
        volts.append(v + rng.normal(0.0, 0.5, n))
        trains.append(((events + 0.5) * DT_S + LATENCY_S)[peaks < n])
    stim = TrainingStimulus("gif", DT_S, current, (0.0, DURATION_S), np.array(volts), tuple(trains))
    return TrainingData("known-gif", (stim,), 0.004)


@pytest.fixture(scope="module")
def known_gif() -> TrainingData:
    return _gif_recording()


@pytest.fixture(scope="module")
def fitted(known_gif):
    return fit_parameters(known_gif, LATENCY_S, STRUCTURE, SETTINGS)[:3]


def test_plugin_registers_the_model():
    (cls,) = qsnmc_register_models()
    assert cls is GIFModel and cls.name == "gif"


def test_recovers_the_membrane_and_eta_of_a_known_gif(known_gif, fitted):
    membrane, _, v_rmse = fitted
    assert known_gif.spike_times_s[0].size > 200  # enough spikes to fit kernels on
    assert membrane.C_pF == pytest.approx(150.0, rel=0.10)
    assert membrane.gL_nS == pytest.approx(7.5, rel=0.10)
    assert membrane.EL_mV == pytest.approx(-70.0, abs=1.5)
    assert membrane.Vr_mV == pytest.approx(-62.0, abs=1.0)
    assert v_rmse < 0.7  # the recording noise is 0.5 mV
    true_eta = BASIS.kernel(TRUE_ETA_PA, LAGS_S)
    np.testing.assert_allclose(BASIS.kernel(membrane.eta_pA, LAGS_S), true_eta, atol=8.0)  # pA


def test_recovers_the_threshold_and_gamma_of_a_known_gif(fitted):
    _, threshold_fit, _ = fitted
    thr = threshold_fit.threshold
    assert thr.VT_mV == pytest.approx(-52.0, abs=1.0)
    assert thr.DV_mV == pytest.approx(1.5, rel=0.25)
    true_gamma = BASIS.kernel(TRUE_GAMMA_MV, LAGS_S)
    # from 10 ms on: the first 4 ms after a spike are refractory, so gamma's start is barely constrained
    np.testing.assert_allclose(BASIS.kernel(thr.gamma_mV, LAGS_S[1:]), true_gamma[1:], atol=1.0)  # mV


def test_threshold_likelihood_is_concave_a_second_start_lands_at_the_same_optimum(known_gif, fitted):
    membrane, first, _ = fitted
    data = likelihood_data(membrane, [bin_stimulus(s, LATENCY_S, DT_S) for s in known_gif.stimuli], BASIS)
    nll = NegativeLogLikelihood(data, RIDGE)
    rng = np.random.default_rng(1)
    for _ in range(3):  # the Hessian is positive definite wherever we look
        b = nll.start() + rng.normal(0.0, 0.3, nll.start().size)
        assert np.linalg.eigvalsh(nll.hessian(b)).min() > 0
    # a start far from the optimum: 20x fewer spikes, half the slope, small random gamma weights
    # (the long-tau gamma features sum hundreds of spikes: large weights would overflow the hazard)
    far = np.concatenate([[first.coefficients[0] - 3.0, 0.5 * first.coefficients[1]], rng.normal(0.0, 0.02, BASIS.size)])
    second = fit_threshold(data, BASIS, RIDGE, start=far)
    assert first.success and second.success
    assert second.log_likelihood == pytest.approx(first.log_likelihood, abs=1e-6 * abs(first.log_likelihood))
    np.testing.assert_allclose(second.coefficients, first.coefficients, rtol=1e-3, atol=1e-3)


def test_end_to_end_fit_and_predict_beats_chance(known_gif):
    stim = known_gif.stimuli[0]
    cut = 24.0
    n_fit = int(round(cut / DT_S))
    train = TrainingData("known-gif", (TrainingStimulus(
        "gif", DT_S, stim.current_pA, (0.0, cut), stim.voltage_mV[:, :n_fit],
        tuple(t[t < cut] for t in stim.spike_times_s)),), 0.004)
    model = GIFModel(seed=0, budget=0.1)
    record = model.fit(train)
    target = qsnmc.Stimulus("gif", DT_S, stim.current_pA, (cut, DURATION_S), N_REPS)
    prediction = model.predict(target)
    trains = prediction if isinstance(prediction, list) else [prediction] * N_REPS
    for t in trains:
        assert np.all(np.diff(t) > 0) and t[0] >= cut and t[-1] <= DURATION_S
    recorded = [t[t >= cut] for t in stim.spike_times_s]
    gammas = [qsnmc.coincidence_factor(r, p, 0.004, duration=DURATION_S - cut) for r, p in zip(recorded, trains)]
    reliability = qsnmc.intrinsic_reliability(recorded, 0.004, duration=DURATION_S - cut)
    assert np.mean(gammas) / reliability > 0.5  # chance is 0
    assert record["fitted"]["prediction_mode"] in ("stochastic", "level")
    assert record["held_out"]["performance"] > 0.5
    assert record["settings"] == qsnmc.settings_record(SETTINGS)


def _slow_current_recording(threshold: EscapeThreshold, seed: int, mean_pA: float, name: str) -> TrainingData:
    """Like :func:`_gif_recording` (20 s), the current with a slow (200 ms) component, the given threshold."""
    rng = np.random.default_rng(seed)
    n = int(round(20.0 / DT_S))
    a, b = np.exp(-DT_S / 0.003), np.exp(-DT_S / 0.2)
    current = (mean_pA + lfilter([150.0 * np.sqrt(1 - a * a)], [1.0, -a], rng.standard_normal(n))
               + lfilter([100.0 * np.sqrt(1 - b * b)], [1.0, -b], rng.standard_normal(n)))
    volts, trains = [], []
    for _ in range(N_REPS):
        events = simulate_spikes(TRUE_MEMBRANE, threshold, current, DT_S, rng=rng)
        v, _ = forced_voltage(TRUE_MEMBRANE, current, DT_S, events)
        volts.append(np.where(np.isfinite(v), v, TRUE_MEMBRANE.Vr_mV) + rng.normal(0.0, 0.5, n))
        trains.append(((events + 0.5) * DT_S + LATENCY_S)[events + int(round(LATENCY_S / DT_S)) < n])
    stim = TrainingStimulus("gif", DT_S, current, (0.0, 20.0), np.array(volts), tuple(trains))
    return TrainingData(name, (stim,), 0.004)


# a known GIF whose threshold follows the voltage (inactivating GIF, Mensi et al. 2016): 0.6 mV
# per mV of the voltage above -58 mV, filtered at 20 ms
TRUE_COUPLING = VoltageCoupling(tau_s=0.02, onset_mV=-58.0)
TRUE_THRESHOLD_COUPLED = EscapeThreshold(VT_mV=-52.0, DV_mV=1.5, gamma_basis=BASIS, gamma_mV=TRUE_GAMMA_MV,
                                         coupling=TRUE_COUPLING, coupling_mV_per_mV=0.6)


@pytest.fixture(scope="module")
def known_gif_coupled() -> TrainingData:
    """The known GIF with its threshold coupled to the voltage, under a current with a slow component."""
    return _slow_current_recording(TRUE_THRESHOLD_COUPLED, 11, 400.0, "known-gif-coupled")


def test_recovers_the_voltage_coupling_of_a_known_gif_and_stays_concave(known_gif_coupled):
    """Spikes drawn by the free run, the coupling fitted by likelihood on the forced voltage: the
    two must filter the voltage the same way for the strength to come back."""
    assert known_gif_coupled.spike_times_s[0].size > 100
    membrane, fit, _, _ = fit_parameters(known_gif_coupled, LATENCY_S, Structure(BASIS, 0.002, TRUE_COUPLING), SETTINGS)
    thr = fit.threshold
    assert fit.success and thr.coupling == TRUE_COUPLING
    assert thr.coupling_mV_per_mV == pytest.approx(0.6, abs=0.12)
    assert thr.VT_mV == pytest.approx(-52.0, abs=2.0)
    assert thr.DV_mV == pytest.approx(1.5, rel=0.25)
    # the same optimum from a second start, the coupling's coefficient at zero
    data = likelihood_data(membrane, [bin_stimulus(s, LATENCY_S, DT_S) for s in known_gif_coupled.stimuli], BASIS,
                           TRUE_COUPLING)
    far = np.concatenate([[fit.coefficients[0] - 2.0, 0.5 * fit.coefficients[1]], np.zeros(BASIS.size + 1)])
    second = fit_threshold(data, BASIS, RIDGE, start=far)
    assert second.success
    np.testing.assert_allclose(second.coefficients, fit.coefficients, rtol=1e-3, atol=1e-3)
    # without a coupling the likelihood is lower; the grid search over filters and onsets finds
    # more likelihood than no coupling and keeps the searched coupling on the threshold
    _, plain, _, _ = fit_parameters(known_gif_coupled, LATENCY_S, STRUCTURE, SETTINGS)
    assert plain.log_likelihood < fit.log_likelihood - 5.0
    _, searched, _, found = fit_parameters(known_gif_coupled, LATENCY_S, STRUCTURE, SETTINGS, search_coupling=True)
    assert isinstance(found.coupling, VoltageCoupling) and searched.threshold.coupling == found.coupling
    assert searched.log_likelihood > plain.log_likelihood


def test_count_matched_readout_follows_the_expected_count(known_gif, fitted):
    """A count-matched readout's train has about ``scale`` times the spike count of trains sampled
    from the escape rate (within one step of the level grid), and a larger scale never fewer spikes."""
    membrane, threshold_fit, _ = fitted
    gif = FittedGIF(membrane, threshold_fit.threshold, LATENCY_S)
    stim = known_gif.stimuli[0]
    target = qsnmc.Stimulus("gif", DT_S, stim.current_pA, (10.0, DURATION_S), 8)

    def predict(readout: Readout):  # as GIFModel.predict reads a fitted neuron out
        return readout_trains(gif, target, (readout,), levels_hz=SETTINGS.levels_hz,
                              count_samples=SETTINGS.count_samples, model_step_s=SETTINGS.model_step_s, seed=0)[readout]

    expected = np.mean([t.size for t in predict(STOCHASTIC)])
    counts = {}
    for scale in (0.8, 1.0, 1.25):
        train = predict(Readout("count-matched", scale))
        assert isinstance(train, np.ndarray) and np.all(np.diff(train) > 0)
        counts[scale] = train.size
    step = SETTINGS.levels_hz[1] / SETTINGS.levels_hz[0]  # a loose tolerance: the level grid is coarse (the counts here move ~2 % per level)
    assert 1.0 / step <= counts[1.0] / expected <= step
    assert counts[0.8] <= counts[1.0] <= counts[1.25]


def test_a_refit_does_not_inherit_the_last_structure(known_gif_coupled):
    """On a neuron whose threshold follows its voltage, the held-out split chooses the coupling,
    with the true filter (20 ms); and the structure search starts from the default structure on
    every fit, so fitting the same model twice gives the same choices."""
    model = GIFModel(seed=0)
    first = model.fit(known_gif_coupled)
    second = model.fit(known_gif_coupled)
    first, second = first["fitted"], second["fitted"]
    for key in ("kernel_span_s", "refractory_after_spike_ms", "voltage_coupling", "latency_ms"):
        assert first[key] == second[key], key
    assert first["threshold"]["VT_mV"] == pytest.approx(second["threshold"]["VT_mV"])
    assert first["voltage_coupling"]["tau_ms"] == pytest.approx(1e3 * TRUE_COUPLING.tau_s)
    assert first["threshold"]["voltage_coupling"]["mV_per_mV"] > 0.0
