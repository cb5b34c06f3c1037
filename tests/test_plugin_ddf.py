"""Tests of the ddf plugin: real embeddings, real RBF fits and real free runs."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.signal import lfilter

from qsnmc import Stimulus, TrainingData, TrainingStimulus
from qsnmc.scoring.metrics import coincidence_factor, n_coincidences
from qsnmc import spike_times_from_voltage
from qsnmc_plugins.ddf import qsnmc_register_models
from qsnmc_plugins.ddf.embedding import suggest_embedding
from qsnmc_plugins.ddf.features import EmbeddingConfig, RBFLayer
from qsnmc_plugins.ddf.forecast import free_run
from qsnmc_plugins.ddf.model import DDFModel
from qsnmc_plugins.ddf.ridge import NormalEquations, solve_ridge

DT = 1e-4


def rs_voltage(current_pA: np.ndarray, dt_s: float = DT, substeps: int = 4) -> np.ndarray:
    """Regular-spiking cortical cell of Pospischil et al. (2008) with an M-current, noise-free.

    Parameters (nS, pF, mV, ms) as in ``reference_data/generate.py``'s cell; exponential
    Euler. Returns the voltage (mV) after each current sample (pA, zero-order hold).
    """
    h_ms = dt_s * 1e3 / substeps
    c_pf, g_l, e_l, g_na, g_k, g_m, tau_max, v_t = 289.5, 11.0, -70.3, 16213.6, 1737.2, 21.71, 608.0, -61.5
    v, m, h, n, p = -70.3, 0.0, 1.0, 0.0, 0.0
    exp = math.exp
    out = np.empty(len(current_pA))
    for k, i_pa in enumerate(np.asarray(current_pA, float).tolist()):
        for _ in range(substeps):
            x, y, z = v - v_t - 13.0, v - v_t - 40.0, v - v_t - 15.0
            am = 0.32 * x / (1 - exp(-x / 4)) if abs(x) > 1e-6 else 1.28
            bm = 0.28 * y / (exp(y / 5) - 1) if abs(y) > 1e-6 else 1.4
            ah, bh = 0.128 * exp(-(v - v_t - 17) / 18), 4 / (1 + exp(-(v - v_t - 40) / 5))
            an = 0.032 * z / (1 - exp(-z / 5)) if abs(z) > 1e-6 else 0.16
            bn = 0.5 * exp(-(v - v_t - 10) / 40)
            p_inf = 1 / (1 + exp(-(v + 35) / 10))
            tau_p = tau_max / (3.3 * exp((v + 35) / 20) + exp(-(v + 35) / 20))
            m, h, n = (a / (a + b) + (g - a / (a + b)) * exp(-h_ms * (a + b)) for a, b, g in ((am, bm, m), (ah, bh, h), (an, bn, n)))
            p = p_inf + (p - p_inf) * exp(-h_ms / tau_p)
            g1, g2, g3 = g_na * m**3 * h, g_k * n**4, g_m * p
            g = g1 + g2 + g3 + g_l
            v_inf = (g1 * 50.0 - (g2 + g3) * 90.0 + g_l * e_l + i_pa) / g
            v = v_inf + (v - v_inf) * exp(-h_ms * g / c_pf)  # nS / pF = 1 / ms
        out[k] = v
    return out


def ou_current(n: int, mean_pA: float, sd_pA: float, tau_s: float, seed: int) -> np.ndarray:
    a = math.exp(-DT / tau_s)
    noise = np.random.default_rng(seed).standard_normal(n)
    return mean_pA + lfilter([sd_pA * math.sqrt(1 - a * a)], [1, -a], noise)


def fhn_voltage(current_pA: np.ndarray, dt_s: float = DT, substeps: int = 10) -> np.ndarray:
    """FitzHugh-Nagumo neuron (a = 0.7, b = 0.8, eps = 0.08), noise-free, forward Euler.

    Time unit 1 ms, input ``I = current_pA / 100``, voltage ``V_mV = -30 + 20 v`` (so the
    harness detector's 0 mV level is v = 1.5, crossed by every spike). Returns the voltage
    (mV) after each current sample (pA, zero-order hold).
    """
    h = dt_s * 1e3 / substeps
    v, w = -1.2, -0.6
    out = np.empty(len(current_pA))
    for k, i in enumerate((np.asarray(current_pA, float) / 100.0).tolist()):
        for _ in range(substeps):
            v, w = v + h * (v - v**3 / 3 - w + i), w + h * 0.08 * (v + 0.7 - 0.8 * w)
        out[k] = -30.0 + 20.0 * v
    return out


@pytest.fixture(scope="module")
def rs_recording():
    """12 s (about 12 Hz) of the RS cell under a 3 ms OU current: train 0-9 s, test 9-12 s."""
    current = ou_current(120_000, 250.0, 150.0, 0.003, seed=3)
    return current, rs_voltage(current)


def _training(current, voltage, stop_s, name="A"):
    n = int(round(stop_s / DT))
    v = voltage[None, :n]
    spikes = (spike_times_from_voltage(v[0], DT),)
    return TrainingStimulus(name, DT, current, (0.0, stop_s), v, spikes)


def test_registers_the_model():
    models = qsnmc_register_models()
    assert [m.name for m in models] == ["ddf"]


def test_embedding_selection_finds_lorenz_dimension():
    """AMI + false nearest neighbours give D = 3 for the Lorenz attractor's x coordinate."""

    def lorenz(_t, u):
        x, y, z = u
        return [10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z]

    sol = solve_ivp(lorenz, (0, 80), [1.0, 1.0, 1.0], t_eval=np.arange(0, 80, 0.01), rtol=1e-8, atol=1e-8)
    result = suggest_embedding(sol.y[0][2000:], max_lag=60, max_dimension=6)
    assert result["dimension"] == 3
    assert 8 <= result["tau"] <= 25  # first AMI minimum near 0.1-0.2 time units
    assert result["fnn"][0] > 0.5 and result["fnn"][2] < 0.01


def test_singular_regression_is_regularised():
    x = np.random.default_rng(0).standard_normal((500, 1))
    design = np.hstack([x, x, np.zeros((500, 1))])  # collinear and empty columns
    eq = NormalEquations(3)
    eq.add(design, 2.0 * x[:, 0])
    weights, mse = solve_ridge(eq, np.array([0.0, 1e-3]))
    assert np.all(np.isfinite(weights)) and np.all(np.isfinite(mse))
    np.testing.assert_allclose(weights[0, :2], [1.0, 1.0], atol=1e-3)
    empty, _ = solve_ridge(NormalEquations(4), np.array([1e-6]))
    assert np.all(empty == 0)


def test_runaway_forecast_is_detected_and_clipped():
    cfg = EmbeddingConfig(2, 1, (), linear_state=True)
    rbf = RBFLayer(np.zeros((1, 2)), np.ones(1))
    # columns: 1 RBF, bias, i(n), i(n+1), v(n-1), v(n-2)
    unstable = np.array([[0.0, 0.0, 0.0, 0.0, 0.05, 0.0]])  # v(n+1) = v(n) + 0.05 v(n-1)
    stable = np.array([[0.0, 0.0, 0.0, 0.0, -0.05, 0.0]])
    history = np.full(cfg.span + 1, 1.0)
    res = free_run(cfg, rbf, np.vstack([unstable, stable]), np.zeros((2000, 2)), history, np.zeros(0), np.zeros(0), (-3.0, 3.0))
    assert res.runaway_steps[0] > 0 and res.first_runaway_step[0] > 0
    assert res.runaway_steps[1] == 0
    assert res.v.max() <= 3.0 and np.all(np.isfinite(res.v))


def test_forecasts_a_conductance_based_neuron(rs_recording):
    """Trained on 9 s of a known RS cell, the free run places its test spikes far above chance.

    Measured (0.5 ms map step, D=3, tau=0.5 ms, 200 ms slow filter, 2 k-means seeds):
    Gamma 0.49, 34 predicted vs 36 true spikes in 9-12 s, 53 % of the true spikes within
    4 ms. Across model seeds 0-11 the fraction averages 0.51 (0.39-0.58); extra slow
    filters (10/50/200 ms), noise-augmented rows, averaging 2-3 maps over k-means draws,
    more seeds or centres, other map steps (0.1-1 ms) all stayed within 0.47-0.59 on
    average: the issue's "most spikes" is reached only sometimes. A multi-step refinement of
    the ridge map on free-run rollouts (an experiment, now in git history; benchmarks/README.md,
    "DDF") lowered the held-out Gamma/R in 7 of 8 seeds. With 300 centres instead of 100
    the fraction rose to 0.56 (seeds 0-3) but the held-out Gamma/R fell (0.22 vs 0.38), so a
    held-out choice would not take it; 500 centres, D=4, or 2 ms delays did worse (0.0-0.49).
    """
    current, voltage = rs_recording
    train = TrainingData("rs", (_training(current, voltage, 9.0),))
    model = DDFModel(seed=1, budget=0.1, structures=[[3, 1, 0, [200.0], 100, 1.0]], row_stride=4)
    record = model.fit(train)
    json.dumps(record)  # the fit record is JSON-serialisable
    assert record["fitted"]["dimension"] == 3 and record["held_out"]["performance"] > 0.2
    assert record["details"]["model_step_ms"] == pytest.approx(0.5) and record["details"]["seeds_per_candidate"] == 2
    predicted = model.predict(Stimulus("A", DT, current, (9.0, 12.0), 1))
    truth = spike_times_from_voltage(voltage[90_000:], DT, t0_s=9.0)
    assert truth.size > 25
    assert 0.7 < predicted.size / truth.size < 1.3
    gamma = coincidence_factor(truth, predicted, 0.004, duration=3.0)
    assert gamma > 0.3, (gamma, predicted.size, truth.size)
    assert n_coincidences(truth, predicted, 0.004) / truth.size > 0.4


def test_places_most_spikes_of_a_fitzhugh_nagumo_neuron():
    """The issue's known-system test: trained on 9 s of a FitzHugh-Nagumo neuron, the free run
    over 9-12 s places most of its spikes within 4 ms.

    Two structures are offered and the held-out free run chooses: the default grid's first
    (D=3, tau=0.5 ms, 200 ms slow filter, 100 centres) and one with a 2 ms delay, a 20 ms
    slow filter and 300 centres, which the slow recovery variable of this 2-D neuron needs.
    Measured over model seeds 0-5: the second is chosen every time; 0.72-0.76 of the 101
    true spikes (about 33 Hz) within 4 ms, Gamma 0.63-0.70 (chance level of the fraction at
    this rate is about 0.26). With the first structure alone the fraction was 0.53-0.65.
    On the 5-D RS cell above (slow M-current) the fraction stays near 0.5 (see that test).
    """
    current = ou_current(120_000, 30.0, 40.0, 0.003, seed=3)
    voltage = fhn_voltage(current)
    train = TrainingData("fhn", (_training(current, voltage, 9.0),))
    structures = ((3, 1, 0, (200.0,), 100, 1.0), (3, 4, 0, (20.0,), 300, 1.0))
    model = DDFModel(seed=0, budget=0.1, structures=structures, n_structures=2, row_stride=4)
    record = model.fit(train)
    assert record["fitted"]["tau_samples"] == 4 and record["fitted"]["n_centres"] == 300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        predicted = model.predict(Stimulus("A", DT, current, (9.0, 12.0), 1))
    truth = spike_times_from_voltage(voltage[90_000:], DT, t0_s=9.0)
    assert truth.size > 80
    assert n_coincidences(truth, predicted, 0.004) / truth.size > 0.6
    assert coincidence_factor(truth, predicted, 0.004, duration=3.0) > 0.5


def test_multi_stimulus_fit_and_prediction_from_rest(rs_recording):
    """Two training stimuli; a test stimulus with no training counterpart starts from rest."""
    current, voltage = rs_recording
    a = _training(current[:50_000], voltage[:50_000], 4.0, "A")
    b = _training(current[50_000:100_000], voltage[50_000:100_000], 4.0, "B")
    train = TrainingData("rs2", (a, b))
    model = DDFModel(seed=1, budget=0.05, structures=((4, 1, 0, (200.0,), 80, 1.0),))
    record = model.fit(train)
    assert set(record["details"]["heldout_start_s"]) == {"A", "B"}
    fresh = Stimulus("C", DT, current[100_000:], (0.5, 2.0), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spikes = model.predict(fresh)
    assert model.last_forecast["warm_start_s"] == 0.0
    assert spikes.size > 5 and np.all(np.diff(spikes) > 0)
    assert spikes[0] >= 0.5 and spikes[-1] <= 2.0


@pytest.mark.slow
def test_beats_poisson_on_embedded_challenge(embedded_challenge):
    from qsnmc import evaluate_in_process

    score = evaluate_in_process(DDFModel(seed=0, budget=0.1), embedded_challenge).score
    assert score.performance > 0.2, score.to_dict()


def test_one_kilohertz_multi_stimulus_data(rs_recording):
    """2007-style data sampled at 1 kHz: the map steps at 1 ms (one sample) and still fits and predicts."""
    current, voltage = rs_recording
    cur_1k, v_1k = current[::10], voltage[::10]  # 1 kHz, 12 s
    dt = 1e-3
    stims = []
    for name, a in (("A", 0), ("B", 4000)):
        c, v = cur_1k[a : a + 4000], v_1k[a : a + 4000]
        spikes = (spike_times_from_voltage(v[:4000], dt),)
        stims.append(TrainingStimulus(name, dt, c, (0.0, 4.0), v[None, :], spikes))
    model = DDFModel(seed=0, budget=0.05, structures=((4, 1, 0, (200.0,), 60, 1.0),))
    record = model.fit(TrainingData("rs-1k", tuple(stims), delta_s=0.002))
    assert record["details"]["samples_per_step"] == 1 and record["details"]["model_step_ms"] == pytest.approx(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spikes = model.predict(Stimulus("C", dt, cur_1k[8000:], (0.5, 4.0), 1))
    assert np.all(np.diff(spikes) > 0) and (spikes.size == 0 or (spikes[0] >= 0.5 and spikes[-1] <= 4.0))
    assert model.last_forecast["warm_start_s"] == 0.0


def test_a_stimulus_that_does_not_repeat_never_makes_the_held_out_score_nan(rs_recording):
    """2007-like data: one stimulus repeats (R = 1), the other does not (one repetition silent: R = 0,
    where Gamma/R is undefined). Every candidate still gets a finite held-out score."""
    current, voltage = rs_recording
    n = 40_000
    v_a = np.vstack([voltage[:n], voltage[:n]])  # two identical repetitions
    v_b = np.vstack([voltage[n:2 * n], np.minimum(voltage[n:2 * n], -40.0)])  # the second repetition never spikes
    stims = tuple(
        TrainingStimulus(name, DT, c, (0.0, n * DT), v, tuple(spike_times_from_voltage(v, DT)))
        for name, c, v in (("A", current[:n], v_a), ("B", current[n:2 * n], v_b))
    )
    # budget 0.5: both repetitions of each stimulus are used, so R is measured on the held-out parts
    model = DDFModel(seed=0, budget=0.5, structures=((4, 1, 0, (200.0,), 60, 1.0),))
    record = model.fit(TrainingData("one-reliable", stims))
    assert record["candidates"] and all(c["objective"] is not None for c in record["candidates"])
    assert np.isfinite(record["held_out"]["performance"])


#: fits the DDF in a fresh process (argv: recordings .npz) and prints its held-out objectives,
#: chosen structure and predicted spike times, every float as its exact hex string, and the
#: BLAS kernels and NumPy SIMD paths it ran with (QSNMC_PROBE_EXP_ULP_UP set: np.exp one ulp up)
_NUMERICS_PROBE = """
import json, os, sys
import numpy as np
if os.environ.get("QSNMC_PROBE_EXP_ULP_UP"):  # a CPU whose np.exp rounds every result one ulp up
    _np_exp = np.exp
    np.exp = lambda x, out=None, **kw: np.nextafter(_np_exp(x, out=out, **kw), np.inf,
                                                    **({} if out is None else {"out": out}))
from qsnmc import Stimulus, TrainingData, TrainingStimulus, spike_times_from_voltage
from qsnmc.harness.numerics import numpy_cpu_features
from qsnmc_plugins.ddf.model import DDFModel
rec = np.load(sys.argv[1])
current, voltage, dt, n = rec["current"], rec["voltage"], 1e-4, 90_000
spikes = (spike_times_from_voltage(voltage[:n], dt),)
train = TrainingData("rs", (TrainingStimulus("A", dt, current, (0.0, n * dt), voltage[None, :n], spikes),))
model = DDFModel(seed=0, budget=0.1, row_stride=4, n_structures=2,
                 structures=((3, 1, 0, (200.0,), 100, 1.0), (4, 1, 0, (200.0,), 100, 1.0)))
record = model.fit(train)
predicted = model.predict(Stimulus("A", dt, current, (9.0, 12.0), 1))
import threadpoolctl
blas = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
print(json.dumps({"objectives": [c["objective"] and float(c["objective"]).hex() for c in record["candidates"]],
                  "chosen": record["fitted"]["centre_seed"], "predicted": [float(t).hex() for t in predicted],
                  "blas": [(i["architecture"], i["num_threads"]) for i in blas],
                  "numpy_paths": numpy_cpu_features()["dispatched"]}))
"""


def _child_environment(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without the variables that steer numerics (OPENBLAS_*,
    NPY_*_CPU_FEATURES, GLIBC_TUNABLES), plus ``env``, this checkout first on the path, no progress bars."""
    import os
    from pathlib import Path

    steer = ("OPENBLAS_", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES", "GLIBC_TUNABLES", "QSNMC_PROBE_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(steer)}
    return dict(base, PYTHONPATH=str(Path(__file__).resolve().parents[1]), QSNMC_PROGRESS="0", **env)


def _probe_in_subprocesses(rs_recording, tmp_path, envs: dict) -> dict:
    """:data:`_NUMERICS_PROBE`'s output (a dict) under each environment of ``envs`` (see
    :func:`_child_environment`), in fresh processes."""
    import subprocess
    import sys

    current, voltage = rs_recording
    data = tmp_path / "rs.npz"
    np.savez(data, current=current, voltage=voltage)
    outputs = {}
    for key, env in envs.items():
        proc = subprocess.run([sys.executable, "-c", _NUMERICS_PROBE, str(data)], env=_child_environment(env),
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs[key] = json.loads(proc.stdout.strip().splitlines()[-1])
    return outputs


@pytest.mark.slow  # four fits in fresh processes: about 20 s of CPU
def test_fit_and_prediction_are_the_same_on_any_blas_kernel_and_thread_count(rs_recording, tmp_path):
    """The map's weights, held-out scores, choice and predicted spike times are bit-identical
    under OpenBLAS kernels without and with fused multiply-adds (Sandybridge, Haswell, this
    machine's default) and one or two threads (issue #24; see ``ddf/ridge.py``). Before the fix
    the weights differed in their last bits under each of these and so did the predictions.
    The OPENBLAS_* variables are set in the child processes only."""
    envs = {(threads, kernel): dict(OPENBLAS_NUM_THREADS=threads, **({"OPENBLAS_CORETYPE": kernel} if kernel else {}))
            for threads, kernel in (("1", None), ("1", "Sandybridge"), ("2", None), ("2", "Haswell"))}
    outputs = _probe_in_subprocesses(rs_recording, tmp_path, envs)
    kernels = {tuple(o.pop("blas")[0]) for o in outputs.values() if o.get("blas")}
    assert len(kernels) >= 3, kernels  # the variables took effect: other kernels or thread counts ran
    first = outputs[("1", None)]
    assert len(first["predicted"]) > 20
    for key, out in outputs.items():
        assert out == first, f"{key} differs from one thread on the default kernel"


def _cpu_code_paths() -> dict[str, dict[str, str]]:
    """Environments that move NumPy and the C library to other CPU code paths: NumPy without every
    SIMD path it dispatches to on this CPU (AVX-512, AVX2, FMA3, ...: NumPy's baseline, as on the
    oldest x86-64), and glibc's ``exp``/``log`` without FMA and AVX2 (its SSE2 builds)."""
    from qsnmc.harness.numerics import numpy_cpu_features

    dispatched = numpy_cpu_features()["dispatched"]
    return {"default": {}, "numpy baseline": {"NPY_DISABLE_CPU_FEATURES": " ".join(dispatched)},
            "glibc without fma": {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"}}


@pytest.mark.slow  # four fits in fresh processes: about 25 s of CPU
def test_fit_and_prediction_are_the_same_on_every_cpu_code_path(rs_recording, tmp_path):
    """Held-out scores, choice and predicted spike times are bit-identical with and without NumPy's
    SIMD code paths (a CPU with AVX-512 rounds ``np.exp`` differently from one without, which
    changed the 2007 cell's predictions, issue #24), with glibc's ``exp`` built without FMA, and
    with ``np.exp`` rounded one ulp up (standing in for the AVX-512 machine this test may not
    have); the map's ``exp`` is :func:`qsnmc.portable_exp`. The code before it (``np.exp``) gave
    other objectives and spike times with ``np.exp`` one ulp up (the same under the first two
    here, as this probe happened to; on the 2007 cell at budget 0.1, glibc's SSE2 ``exp`` changed them)."""
    envs = dict(_cpu_code_paths(), **{"np.exp one ulp up": {"QSNMC_PROBE_EXP_ULP_UP": "1"}})
    outputs = _probe_in_subprocesses(rs_recording, tmp_path, envs)
    assert outputs["numpy baseline"]["numpy_paths"] == []  # the variable took effect
    for out in outputs.values():
        del out["blas"], out["numpy_paths"]
    first = outputs["default"]
    assert len(first["predicted"]) > 20
    for key, out in outputs.items():
        assert out == first, f"{key} differs from the default code paths"


_EXP_DIGEST = """
import hashlib, numpy as np
from qsnmc.fitting.portable_exp import exp
x = np.random.default_rng(7).uniform(-750.0, 720.0, 200_000)
x[::3] = -np.abs(x[::3]) / 100.0
print(hashlib.sha256(exp(x).tobytes()).hexdigest(), hashlib.sha256(exp(x[:500]).tobytes()).hexdigest())
"""


def test_portable_exp_is_accurate_and_the_same_on_every_cpu_code_path():
    """:func:`qsnmc.portable_exp` is within 1 ulp of the C library's, handles the range's ends, and gives
    the same bits under every NumPy SIMD code path and glibc build (fresh processes)."""
    import subprocess
    import sys

    from qsnmc.fitting.portable_exp import exp

    x = np.random.default_rng(3).uniform(-707.0, 709.0, 100_000)
    x[::2] = -np.abs(x[::2]) / 200.0  # the RBF's arguments: mostly between -4 and 0
    got, libm = exp(x), np.array([math.exp(v) for v in x])
    assert np.all(np.abs(got - libm) <= np.spacing(libm))
    ends = exp(np.array([0.0, -0.0, 1.0, -708.0, -np.inf, 710.0, np.inf, np.nan]))
    assert ends[:2].tolist() == [1.0, 1.0] and abs(ends[2] - math.e) <= np.spacing(math.e)
    assert ends[3:5].tolist() == [0.0, 0.0] and ends[5:7].tolist() == [np.inf, np.inf] and np.isnan(ends[7])
    y = x.reshape(400, 250).copy()
    assert exp(y, out=y) is y and np.array_equal(y.ravel(), got)  # in place, in blocks
    digests = set()
    for env in _cpu_code_paths().values():
        proc = subprocess.run([sys.executable, "-c", _EXP_DIGEST], env=_child_environment(env), capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        digests.add(proc.stdout.strip())
    assert len(digests) == 1, digests
