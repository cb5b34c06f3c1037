"""The MAT spike generator: a non-resetting potential against a multi-timescale adaptive threshold.

Kobayashi, Tsubo & Shinomoto (2009). Made-to-order spiking neuron model equipped with a
multi-timescale adaptive threshold. Frontiers in Computational Neuroscience 3:9.

The threshold is ``theta(t) = omega + sum_k alpha_k sum_{spikes j} exp(-(t - t_j) / tau_k)``;
the neuron fires whenever ``V(t) >= theta(t)`` outside an absolute refractory period
after each spike. ``V`` is never reset: spike after-effects live in the threshold only.

The simulation is event-driven and vectorised: between two spikes the threshold is a
known sum of decaying exponentials, so the next spike is the first sample at which
``V`` reaches it. That sample is searched in NumPy blocks that double in length
(from :data:`FIRST_BLOCK` samples), so the Python loop turns a few times per spike,
never once per sample.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: samples in the first block searched after a spike; each further block doubles
FIRST_BLOCK = 64
#: longest block (samples)
MAX_BLOCK = 8192


def simulate_spike_indices(potential_mV: np.ndarray, dt_s: float, omega_mV: float, alphas_mV: Sequence[float],
                           taus_s: Sequence[float], refractory_s: float, max_spikes: int | None = None) -> np.ndarray:
    """Sample indices at which the MAT neuron fires.

    Args:
        potential_mV: the non-resetting membrane potential ``V`` (mV), one value per sample.
        dt_s: sampling step (s).
        omega_mV: resting threshold ``omega`` (mV).
        alphas_mV: threshold jump ``alpha_k`` (mV) of each kernel (may be negative).
        taus_s: decay time constant ``tau_k`` (s) of each kernel (published: 10 and 200 ms).
        refractory_s: absolute refractory period after each spike (s; published: 2 ms): the next spike
            comes at least ``round(refractory_s / dt_s)`` samples (and one sample) later.
        max_spikes: stop after this many spikes (a guard for absurd parameters); None: no limit.

    Returns:
        Sorted int64 sample indices of the spikes.
    """
    vo = np.asarray(potential_mV, dtype=np.float64) - omega_mV
    alphas = np.asarray(alphas_mV, dtype=np.float64)
    rates = dt_s / np.asarray(taus_s, dtype=np.float64)  # decay exponent per sample of each kernel
    if alphas.shape != rates.shape:
        raise ValueError(f"{alphas.size} alphas for {rates.size} time constants")
    n = vo.size
    n_refractory = max(1, int(round(refractory_s / dt_s)))
    decay = np.exp(-np.outer(rates, np.arange(MAX_BLOCK)))  # (n_kernels, MAX_BLOCK)
    limit = n if max_spikes is None else max_spikes
    above = np.flatnonzero(vo >= 0.0)  # before the first spike the threshold is omega
    if above.size == 0 or limit <= 0:
        return np.zeros(0, dtype=np.int64)
    last = int(above[0])
    spikes = [last]
    level = alphas.copy()  # kernel values at the last spike, its own jump included (mV)
    while len(spikes) < limit:
        start = last + n_refractory
        block = FIRST_BLOCK
        found = -1
        while start < n:
            stop = min(start + block, n)
            theta = (level * np.exp(-(start - last) * rates)) @ decay[:, : stop - start]
            crossed = vo[start:stop] >= theta
            j = int(crossed.argmax())
            if crossed[j]:
                found = start + j
                break
            start = stop
            block = min(2 * block, MAX_BLOCK)
        if found < 0:
            break
        level = level * np.exp(-(found - last) * rates) + alphas
        last = found
        spikes.append(found)
    return np.asarray(spikes, dtype=np.int64)
