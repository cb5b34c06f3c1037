"""A synthetic AdEx recording with known parameters, for the ``adex`` plugin's tests.

The injected current is 2009-like: an Ornstein-Uhlenbeck noise (tau 3 ms) whose
mean and standard deviation change every few seconds. Each repetition adds its own
small independent noise current (the cell's intrinsic noise), so repetitions differ
as real recordings do. Spikes are painted into the voltage as one sample at
+20 mV, so the harness's 0 mV detector finds them.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from qsnmc import TrainingData, TrainingStimulus
from qsnmc import spike_times_from_voltage
from qsnmc_plugins.adex.parameters import AdExParameters
from qsnmc_plugins.adex.simulate import parameter_columns, run_columns
from qsnmc_plugins.adex.brian_setup import run_with_fallback

#: height of a painted spike sample (mV)
SPIKE_PEAK_MV = 20.0


def ou_noise(n: int, dt_s: float, tau_s: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Ornstein-Uhlenbeck samples (exact discretisation)."""
    alpha = np.exp(-dt_s / tau_s)
    x = lfilter([np.sqrt(1.0 - alpha**2)], [1.0, -alpha], rng.standard_normal(n))
    return x


def synthetic_current(duration_s: float, dt_s: float, seed: int, block_s: float = 2.0) -> np.ndarray:
    """A 2009-like injected current (pA): OU noise with mean and SD changing every ``block_s``."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s / dt_s))
    n_blocks = int(np.ceil(duration_s / block_s))
    mean = np.repeat(rng.uniform(100.0, 300.0, n_blocks), int(round(block_s / dt_s)))[:n]
    sd = np.repeat(rng.uniform(50.0, 250.0, n_blocks), int(round(block_s / dt_s)))[:n]
    return mean + sd * ou_noise(n, dt_s, 0.003, rng)


def synthetic_recording(
    params: AdExParameters,
    current_pA: np.ndarray,
    dt_s: float,
    n_repetitions: int,
    noise_pA: float,
    seed: int,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Voltage (mV, shape ``(n_repetitions, n_samples)``) and 0 mV spike times (s) per repetition."""
    rng = np.random.default_rng(seed + 1)
    n = current_pA.shape[0]
    currents = np.stack(
        [current_pA + noise_pA * ou_noise(n, dt_s, 0.003, rng) for _ in range(n_repetitions)], axis=1
    )
    cols = {k: np.repeat(v, n_repetitions) for k, v in parameter_columns([params]).items()}
    res = run_with_fallback(
        lambda: run_columns(cols, np.arange(n_repetitions), currents, dt_s, 0.0, record_voltage=True)
    )
    volt = res.voltage_mV.copy()
    for i, train in enumerate(res.spike_times_s):
        k = np.round(train / dt_s).astype(np.int64) + 1  # the step after the crossing update
        volt[i, k[k < n]] = SPIKE_PEAK_MV
    spikes = spike_times_from_voltage(volt, dt_s)
    return volt, spikes


def synthetic_training_data(
    params: AdExParameters,
    duration_s: float,
    dt_s: float = 1e-4,
    n_repetitions: int = 4,
    noise_pA: float = 20.0,
    seed: int = 0,
) -> TrainingData:
    """A one-stimulus :class:`TrainingData` recorded from ``params`` over ``0..duration_s``."""
    current = synthetic_current(duration_s, dt_s, seed)
    volt, spikes = synthetic_recording(params, current, dt_s, n_repetitions, noise_pA, seed)
    stim = TrainingStimulus("synthetic", dt_s, current, (0.0, duration_s), volt, tuple(spikes))
    return TrainingData("synthetic-adex", (stim,))
