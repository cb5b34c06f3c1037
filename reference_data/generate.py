"""Generate the embedded default challenge ``reference_data/embedded/``.

A synthetic stand-in for the QSNMC 2009 Challenge A recordings: a single-compartment
conductance-based regular-spiking (RS) pyramidal cell with a slow M-current
(Pospischil et al. 2008, Biol Cybern 99:427-441), driven by the same 60 s
fluctuating current in 13 repetitions, each with its own intrinsic noise, and
"recorded" at 10 kHz with additive recording noise and 1/32 mV ADC quantisation.

Usage::

    python reference_data/generate.py [--out DIR] [--seed N]

The default writes ``reference_data/embedded`` (replaced atomically). The seed fixes
everything: the injected current, the per-repetition intrinsic noise and the
recording noise. Brian2's C++ standalone device runs the simulation (g++ required).

Run time: 25-45 s in all on 2 CPU cores shared with other jobs (measured: 21-36 s
for C++ compilation plus the simulation of 13 neurons x 60 s at 25 us, about 5 s for
the noise, spike detection and compression).

This script lives outside the ``qsnmc`` package on purpose: with its seed it could
re-simulate the hidden test window, so submission code must not be able to read it.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qsnmc.challenges.store import Challenge, ChallengeStimulus, write_challenge
from qsnmc.scoring.metrics import intrinsic_reliability
from qsnmc.scoring.spikes import spike_times_from_voltage

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "embedded"
DEFAULT_SEED = 2009

DT_S = 1e-4  # recording step (s): 10 kHz
DURATION_S = 60.0  # protocol length (s)
TRAIN_WINDOW_S = (0.0, 39.0)
TEST_WINDOW_S = (39.0, 60.0)
N_REPETITIONS = 13
SIM_DT_MS = 0.025  # integration step (ms)
VOLTAGE_LSB_MV = 1.0 / 32.0  # ADC step of the stored voltage (mV per count)


@dataclass(frozen=True)
class RSCell:
    """Pospischil et al. 2008 RS cell (their Fig. 2 in-vitro parameter set), single compartment.

    Densities per membrane area; the compartment is a cylinder of length = diameter.
    Na+/K+ follow Traub & Miles (1991) kinetics shifted by ``V_T_mV``; I_M follows
    Yamada et al. (1989) as in the paper, with time-constant scale ``tau_max_ms``.
    """

    diameter_um: float = 96.0
    length_um: float = 96.0
    C_m_uF_per_cm2: float = 1.0
    g_leak_mS_per_cm2: float = 0.038
    E_leak_mV: float = -70.3
    g_Na_mS_per_cm2: float = 56.0
    g_Kd_mS_per_cm2: float = 6.0
    g_M_mS_per_cm2: float = 0.075
    tau_max_ms: float = 608.0
    V_T_mV: float = -61.5
    E_Na_mV: float = 50.0
    E_K_mV: float = -90.0

    @property
    def area_cm2(self) -> float:
        """Lateral area of the cylinder, pi * d * L (cm^2)."""
        return float(np.pi * self.diameter_um * self.length_um * 1e-8)

    def summary(self) -> dict:
        """Parameters with units, plus the whole-cell values (pF, nS) they imply."""
        d = asdict(self)
        a = self.area_cm2
        d.update(
            area_cm2=a,
            C_m_pF=self.C_m_uF_per_cm2 * a * 1e6,
            g_leak_nS=self.g_leak_mS_per_cm2 * a * 1e6,
            g_Na_nS=self.g_Na_mS_per_cm2 * a * 1e6,
            g_Kd_nS=self.g_Kd_mS_per_cm2 * a * 1e6,
            g_M_nS=self.g_M_mS_per_cm2 * a * 1e6,
            tau_membrane_ms=self.C_m_uF_per_cm2 / self.g_leak_mS_per_cm2,
        )
        return d


@dataclass(frozen=True)
class ProtocolSettings:
    """The injected current: an Ornstein-Uhlenbeck process with piecewise mean and s.d. (pA)."""

    tau_ms: float = 3.0
    segment_min_s: float = 2.0
    segment_max_s: float = 5.0
    mean_range_pA: tuple[float, float] = (100.0, 360.0)
    sd_range_pA: tuple[float, float] = (40.0, 180.0)
    p_ramp: float = 0.2  # fraction of segments whose mean ramps linearly
    p_step: float = 0.15  # fraction whose mean steps halfway


@dataclass(frozen=True)
class NoiseSettings:
    """Per-repetition intrinsic noise and recording noise."""

    intrinsic_sd_pA: float = 6.0  # s.d. of an independent OU current per repetition
    intrinsic_tau_ms: float = 2.0
    recording_sd_mV: float = 0.3  # white Gaussian noise added to every 10 kHz sample


def unit_ou(rng: np.random.Generator, n_samples: int, dt_s: float, tau_s: float, n_cols: int = 1) -> np.ndarray:
    """Exactly discretised OU process with unit stationary s.d., shape ``(n_samples, n_cols)``."""
    a = np.exp(-dt_s / tau_s)
    w = rng.standard_normal((n_samples, n_cols)) * np.sqrt(1.0 - a * a)
    w[0] = rng.standard_normal(n_cols)  # start in the stationary distribution
    return _ar1(w, a)


def _ar1(w: np.ndarray, a: float) -> np.ndarray:
    """x[k] = a x[k-1] + w[k] with x[0] = w[0] (scipy.signal.lfilter, columnwise)."""
    from scipy.signal import lfilter

    zi = (a * w[0])[None, :]  # lfilter adds zi to its first output: x[1] = a x[0] + w[1]
    x = lfilter([1.0], [1.0, -a], w[1:], axis=0, zi=zi)[0]
    return np.concatenate([w[:1], x], axis=0)


def build_current(
    rng: np.random.Generator, settings: ProtocolSettings, duration_s: float = DURATION_S, dt_s: float = DT_S
) -> tuple[np.ndarray, list[dict]]:
    """The injected current (pA, float32, 10 kHz) and the list of its segments.

    Segments of 2-5 s each have their own mean (constant, a linear ramp, or a step
    halfway) and s.d.; the fluctuating part is one continuous unit OU process
    (time constant ``settings.tau_ms``) multiplied by the segment's s.d.
    """
    n = int(round(duration_s / dt_s))
    mean = np.empty(n)
    sd = np.empty(n)
    segments = []
    t = 0.0
    lo, hi = settings.mean_range_pA
    while t < duration_s - 1e-9:
        length = float(rng.uniform(settings.segment_min_s, settings.segment_max_s))
        if duration_s - (t + length) < settings.segment_min_s:
            length = duration_s - t
        i0, i1 = int(round(t / dt_s)), int(round((t + length) / dt_s))
        kind = rng.choice(["ou", "ramp", "step"], p=[1 - settings.p_ramp - settings.p_step, settings.p_ramp, settings.p_step])
        m0 = float(rng.uniform(lo, hi))
        s = float(rng.uniform(*settings.sd_range_pA))
        if kind == "ou":
            mean[i0:i1] = m0
            m1 = m0
        elif kind == "ramp":
            m1 = float(rng.uniform(lo, hi))
            mean[i0:i1] = np.linspace(m0, m1, i1 - i0)
        else:
            m1 = float(rng.uniform(lo, hi))
            half = (i0 + i1) // 2
            mean[i0:half] = m0
            mean[half:i1] = m1
        sd[i0:i1] = s
        segments.append(
            {"start_s": round(t, 4), "stop_s": round(t + length, 4), "kind": str(kind),
             "mean_start_pA": round(m0, 2), "mean_end_pA": round(m1, 2), "sd_pA": round(s, 2)}
        )
        t += length
    x = unit_ou(rng, n, dt_s, settings.tau_ms * 1e-3)[:, 0]
    current = (mean + sd * x).astype(np.float32)
    return current, segments


def simulate(
    current_pA: np.ndarray,
    noise_pA: np.ndarray,
    cell: RSCell,
    dt_s: float = DT_S,
    sim_dt_ms: float = SIM_DT_MS,
    build_dir: str | None = None,
) -> np.ndarray:
    """Membrane voltage (mV) of ``noise_pA.shape[1]`` copies of the cell, sampled every ``dt_s``.

    One Brian2 NeuronGroup, one neuron per column of ``noise_pA``; every neuron gets
    ``current_pA`` (zero-order hold at ``dt_s``) plus its own noise column. Integrated
    with exponential Euler at ``sim_dt_ms`` by Brian2's C++ standalone device.

    Args:
        current_pA: shared injected current, shape ``(n_samples,)``.
        noise_pA: intrinsic noise current, shape ``(n_samples, n_neurons)``.

    Returns:
        Voltage, shape ``(n_neurons, n_samples)``; sample k is v at time k * dt_s.
    """
    import brian2 as b2
    from brian2 import cm, mV, ms, msiemens, pA, second, ufarad

    tmp = build_dir or tempfile.mkdtemp(prefix="qsnmc_rs_")
    b2.set_device("cpp_standalone", directory=tmp, build_on_run=False)
    try:
        b2.prefs.devices.cpp_standalone.openmp_threads = 0
        b2.defaultclock.dt = sim_dt_ms * ms
        a = cell.area_cm2 * cm**2
        ns = {
            "Cm": cell.C_m_uF_per_cm2 * ufarad / cm**2 * a,
            "gL": cell.g_leak_mS_per_cm2 * msiemens / cm**2 * a,
            "gNa": cell.g_Na_mS_per_cm2 * msiemens / cm**2 * a,
            "gK": cell.g_Kd_mS_per_cm2 * msiemens / cm**2 * a,
            "gM": cell.g_M_mS_per_cm2 * msiemens / cm**2 * a,
            "EL": cell.E_leak_mV * mV,
            "ENa": cell.E_Na_mV * mV,
            "EK": cell.E_K_mV * mV,
            "VT": cell.V_T_mV * mV,
            "taumax": cell.tau_max_ms * ms,
            "I_stim": b2.TimedArray(np.asarray(current_pA, np.float64) * pA, dt=dt_s * second),
            "I_noise": b2.TimedArray(np.asarray(noise_pA, np.float64) * pA, dt=dt_s * second),
        }
        eqs = """
        dv/dt = (gL*(EL-v) + gNa*m**3*h*(ENa-v) + gK*n**4*(EK-v) + gM*p*(EK-v)
                 + I_stim(t) + I_noise(t, i)) / Cm : volt
        dm/dt = alpha_m*(1-m) - beta_m*m : 1
        dh/dt = alpha_h*(1-h) - beta_h*h : 1
        dn/dt = alpha_n*(1-n) - beta_n*n : 1
        dp/dt = (p_inf - p)/tau_p : 1
        alpha_m = 1.28/ms / exprel(-(v-VT-13*mV)/(4*mV)) : Hz
        beta_m = 1.4/ms / exprel((v-VT-40*mV)/(5*mV)) : Hz
        alpha_h = 0.128/ms * exp(-(v-VT-17*mV)/(18*mV)) : Hz
        beta_h = 4/ms / (1 + exp(-(v-VT-40*mV)/(5*mV))) : Hz
        alpha_n = 0.16/ms / exprel(-(v-VT-15*mV)/(5*mV)) : Hz
        beta_n = 0.5/ms * exp(-(v-VT-10*mV)/(40*mV)) : Hz
        p_inf = 1 / (1 + exp(-(v+35*mV)/(10*mV))) : 1
        tau_p = taumax / (3.3*exp((v+35*mV)/(20*mV)) + exp(-(v+35*mV)/(20*mV))) : second
        """
        n_neurons = noise_pA.shape[1]
        group = b2.NeuronGroup(n_neurons, eqs, method="exponential_euler", namespace=ns, name="rs_cells")
        # start at the resting steady state of the gates at E_leak
        group.v = cell.E_leak_mV * mV
        group.m = "alpha_m/(alpha_m+beta_m)"
        group.h = "alpha_h/(alpha_h+beta_h)"
        group.n = "alpha_n/(alpha_n+beta_n)"
        group.p = "p_inf"
        mon = b2.StateMonitor(group, "v", record=True, dt=dt_s * second, name="v_monitor")
        n_samples = current_pA.shape[0]
        b2.run(n_samples * dt_s * second)
        b2.device.build(directory=tmp, compile=True, run=True, debug=False)
        v = np.asarray(mon.v / mV)[:, :n_samples]
    finally:
        b2.device.reinit()
        b2.device.activate()  # back to the runtime device
        b2.set_device("runtime")
        if build_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return v


def record(v_mV: np.ndarray, rng: np.random.Generator, sd_mV: float, lsb_mV: float) -> np.ndarray:
    """Add white recording noise and quantise to ``lsb_mV`` (the stored ADC values, in mV)."""
    noisy = v_mV + sd_mV * rng.standard_normal(v_mV.shape)
    return np.round(noisy / lsb_mV) * lsb_mV


def generate(out: Path, seed: int = DEFAULT_SEED, quiet: bool = False) -> dict:
    """Simulate, record and write the challenge; return the manifest's provenance."""
    import brian2

    t_start = time.time()
    cell, proto, noise = RSCell(), ProtocolSettings(), NoiseSettings()
    ss = np.random.SeedSequence(seed)
    rng_current, rng_intrinsic, rng_recording = (np.random.default_rng(s) for s in ss.spawn(3))
    current, segments = build_current(rng_current, proto)
    n = current.shape[0]
    intrinsic = noise.intrinsic_sd_pA * unit_ou(rng_intrinsic, n, DT_S, noise.intrinsic_tau_ms * 1e-3, N_REPETITIONS)
    t_sim = time.time()
    v = simulate(current, intrinsic, cell)
    t_sim = time.time() - t_sim
    v_rec = record(v, rng_recording, noise.recording_sd_mV, VOLTAGE_LSB_MV)
    # Canonical spike times: the harness's detector on the stored (noisy, quantised) voltage.
    # Training spikes come from the training window's voltage alone, exactly as a model would
    # detect them in the public data; test spikes from the whole trace, kept if t >= 39 s.
    i0, i1 = int(round(TRAIN_WINDOW_S[0] / DT_S)), int(round(TRAIN_WINDOW_S[1] / DT_S))
    train = spike_times_from_voltage(v_rec[:, i0:i1], DT_S, 0.0, t0_s=TRAIN_WINDOW_S[0])
    test = [
        t[(t >= TEST_WINDOW_S[0]) & (t <= TEST_WINDOW_S[1])] for t in spike_times_from_voltage(v_rec, DT_S, 0.0)
    ]
    r_test = intrinsic_reliability(test, 0.004, duration=TEST_WINDOW_S[1] - TEST_WINDOW_S[0])
    r_train = intrinsic_reliability(train, 0.004, duration=TRAIN_WINDOW_S[1] - TRAIN_WINDOW_S[0])
    rate = lambda trains, win: float(np.mean([len(t) for t in trains]) / (win[1] - win[0]))  # noqa: E731
    stats = {
        "reliability_test": r_test,
        "reliability_train": r_train,
        "rate_train_Hz": rate(train, TRAIN_WINDOW_S),
        "rate_test_Hz": rate(test, TEST_WINDOW_S),
        "train_spike_counts": [len(t) for t in train],
        "test_spike_counts": [len(t) for t in test],
        "simulation_wall_s": round(t_sim, 1),
    }
    provenance = {
        "kind": "synthetic stand-in for the QSNMC 2009 Challenge A cell (not the real recording)",
        "generator": "reference_data/generate.py",
        "seed": seed,
        "seed_streams": "numpy SeedSequence(seed).spawn(3): current, intrinsic noise, recording noise",
        "model": {
            "name": "Pospischil et al. 2008 regular-spiking (RS) cell with M-current",
            "citation": "Pospischil M, Toledo-Rodriguez M, Monier C, Piwkowska Z, Bal T, Fregnac Y, "
            "Markram H, Destexhe A (2008) Minimal Hodgkin-Huxley type models for different classes of "
            "cortical and thalamic neurons. Biol Cybern 99:427-441",
            "equations": "C dV/dt = g_leak(E_leak-V) + g_Na m^3 h (E_Na-V) + g_Kd n^4 (E_K-V) + g_M p (E_K-V) "
            "+ I_stim(t) + I_noise_i(t); Traub-Miles rates shifted by V_T; "
            "p_inf = 1/(1+exp(-(V+35)/10)), tau_p = tau_max/(3.3 exp((V+35)/20) + exp(-(V+35)/20))",
            "parameters": cell.summary(),
        },
        "current": {
            "construction": "I(t) = mean(t) + sd(t) * x(t), x a unit-variance Ornstein-Uhlenbeck process; "
            "mean and sd piecewise over segments (constant, linear ramp, or a step halfway); "
            "the same current for every repetition; float32 pA at 10 kHz, injected with zero-order hold",
            "settings": asdict(proto),
            "segments": segments,
            "mean_pA": float(current.mean()),
            "sd_pA": float(current.std()),
        },
        "noise": asdict(noise)
        | {
            "intrinsic": "independent OU current per repetition (exactly discretised at 10 kHz, zero-order hold)",
            "recording": "white Gaussian noise added to the 10 kHz voltage, then quantised to voltage_lsb_mV",
            "voltage_lsb_mV": VOLTAGE_LSB_MV,
        },
        "integration": {
            "simulator": f"Brian2 {brian2.__version__}, cpp_standalone device",
            "method": "exponential_euler",
            "dt_ms": SIM_DT_MS,
            "sampling_dt_s": DT_S,
            "initial_state": "V = E_leak, gates at their steady state there, at t = 0",
            "neuron_group": f"one NeuronGroup of {N_REPETITIONS} neurons, one per repetition",
        },
        "spike_detection": "qsnmc.scoring.spikes.spike_times_from_voltage, upward 0 mV crossings of the stored "
        "(noisy, quantised) 10 kHz voltage, in both windows",
        "measured": stats,
    }
    stim = ChallengeStimulus(
        name="A",
        dt_s=DT_S,
        current_pA=current.astype(np.float64),
        n_repetitions=N_REPETITIONS,
        train_window_s=TRAIN_WINDOW_S,
        train_voltage_mV=v_rec[:, i0:i1],
        train_spikes_s=train,
        test_window_s=TEST_WINDOW_S,
        test_spikes_s=test,
    )
    challenge = Challenge(
        name="embedded",
        stimuli=[stim],
        delta_s=0.004,
        threshold_mV=0.0,
        description="Synthetic QSNMC-2009-style Challenge A: Pospischil 2008 RS cell with M-current, "
        "13 repetitions of a 60 s fluctuating current, 10 kHz; train 0-39 s, test 39-60 s.",
    )
    provenance["generation_wall_s"] = round(time.time() - t_start, 1)
    write_challenge(out, challenge, voltage_lsb_mV=VOLTAGE_LSB_MV, provenance=provenance)
    if not quiet:
        print(f"wrote {out}: R(test) = {r_test:.3f}, R(train) = {r_train:.3f}, "
              f"rate train {stats['rate_train_Hz']:.2f} Hz, test {stats['rate_test_Hz']:.2f} Hz, "
              f"simulation {t_sim:.0f} s, total {time.time() - t_start:.0f} s")
        print("train spikes per repetition:", stats["train_spike_counts"])
        print("test spikes per repetition: ", stats["test_spike_counts"])
    return provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="challenge folder to write (replaced)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="master seed")
    args = parser.parse_args(argv)
    generate(args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
