"""A tiny synthetic challenge made in-process: a noisy LIF neuron.

4 repetitions of a 20 s fluctuating current at 2 kHz, training 0-14 s, test 14-20 s; each stimulus
(A, B, ...) is another current into the same neuron. Nothing is read from disk.
"""
from __future__ import annotations

import numpy as np

from qsnmc.challenges.store import Challenge, ChallengeStimulus
from qsnmc.scoring.spikes import spike_times_from_voltage

#: sampling step of the synthetic recordings (s)
DT_S = 0.0005
#: end of the training window = start of the test window (s)
TRAIN_UNTIL_S = 14.0


def simulate_noisy_lif(duration_s: float = 20.0, n_reps: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Current (pA) and voltage (mV, reps x samples) of a LIF with intrinsic noise and 40 mV spikes."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s / DT_S))
    # OU current, tau 5 ms, mean stepping every 2 s
    mean = np.repeat(rng.uniform(150, 350, int(np.ceil(n / 4000))), 4000)[:n]
    ou = np.zeros(n)
    a = np.exp(-DT_S / 0.005)
    noise = rng.normal(0, 150 * np.sqrt(1 - a * a), n)
    for k in range(1, n):
        ou[k] = a * ou[k - 1] + noise[k]
    current = mean + ou
    tau, r_mohm, e_l, theta, reset = 0.02, 0.1, -70.0, -50.0, -65.0  # s, GOhm-ish scale, mV
    v = np.full(n_reps, e_l)
    out = np.empty((n_reps, n))
    refractory = np.zeros(n_reps, dtype=int)
    intrinsic = rng.normal(0, 0.25, (n, n_reps))
    for k in range(n):
        v = v + DT_S / tau * (e_l - v + r_mohm * current[k]) + intrinsic[k]
        v[refractory > 0] = reset
        refractory -= 1
        fired = v >= theta
        out[:, k] = np.where(fired, 40.0, v)
        v[fired] = reset
        refractory[fired] = 4
    return current, out + rng.normal(0, 0.2, out.shape)


def synthetic_stimulus(name: str, seed: int) -> ChallengeStimulus:
    """One simulated stimulus: training 0-14 s, test 14-20 s."""
    current, volt = simulate_noisy_lif(seed=seed)
    spikes = spike_times_from_voltage(volt, DT_S)
    n_train = int(round(TRAIN_UNTIL_S / DT_S))
    return ChallengeStimulus(
        name=name,
        dt_s=DT_S,
        current_pA=current,
        n_repetitions=volt.shape[0],
        train_window_s=(0.0, TRAIN_UNTIL_S),
        train_voltage_mV=volt[:, :n_train],
        train_spikes_s=[s[s < TRAIN_UNTIL_S] for s in spikes],
        test_window_s=(TRAIN_UNTIL_S, 20.0),
        test_spikes_s=[s[s >= TRAIN_UNTIL_S] for s in spikes],
    )


def synthetic_challenge(name: str = "synthetic-test", n_stimuli: int = 1) -> Challenge:
    """The noisy LIF on ``n_stimuli`` stimuli (A, B, ...: different currents, same neuron), in memory."""
    stimuli = [synthetic_stimulus(chr(ord("A") + i), seed=1 + i) for i in range(n_stimuli)]
    return Challenge(name, stimuli, delta_s=0.004, description="test LIF")
