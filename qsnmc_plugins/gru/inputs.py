"""From recordings to the network's 1 ms bins: inputs (current and its filtrates) and targets.

Units outside this module: s, pA. Inside: bin indices on a grid that starts at the
protocol's time 0 (bin k covers ``[k * bin_s, (k + 1) * bin_s)``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def bin_factor(dt_s: float, bin_s: float) -> int:
    """Recording samples per bin (at least 1)."""
    return max(1, int(round(bin_s / dt_s)))


def block_mean(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean over consecutive blocks of ``factor`` samples (an incomplete tail block is dropped)."""
    n = x.shape[-1] // factor
    return np.asarray(x, np.float64)[..., : n * factor].reshape(*x.shape[:-1], n, factor).mean(axis=-1)


def lowpass_bank(current: np.ndarray, bin_s: float, taus_s: tuple[float, ...]) -> np.ndarray:
    """The current (T,) and its causal exponential low-pass filtrates with time constants
    ``taus_s`` (s), as columns (T, 1 + len(taus_s)).

    Each filter has unit DC gain and starts at the first value (y_0 = x_0), i.e. as if the
    current had been constant before the protocol's start.
    """
    from scipy.signal import lfilter, lfiltic

    x = np.asarray(current, np.float64)
    cols = [x]
    for tau in taus_s:
        a = float(np.exp(-bin_s / tau))
        zi = lfiltic([1.0 - a], [1.0, -a], y=[x[0]], x=[x[0]])
        cols.append(lfilter([1.0 - a], [1.0, -a], x, zi=zi)[0])
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class InputScaling:
    """How the binned current and its filtrates become the network's standardised inputs.

    Attributes:
        bin_s: bin width (s).
        taus_s: time constants of the low-pass filtrates (s).
        current_mean_pA, current_sd_pA: mean and SD of the binned fit-part current (pA).
        channel_sd: SD of each input channel (current, filtrates) over the fit part, after
            standardising the current (so each channel has unit SD).
    """

    bin_s: float
    taus_s: tuple[float, ...]
    current_mean_pA: float
    current_sd_pA: float
    channel_sd: tuple[float, ...]

    @classmethod
    def fit(cls, currents_pA: list[np.ndarray], dt_s: float, bin_s: float, taus_s: tuple[float, ...]) -> "InputScaling":
        """From the fit-part currents (pA, one array per stimulus, recording grid)."""
        f = bin_factor(dt_s, bin_s)
        binned = [block_mean(c, f) for c in currents_pA]
        allc = np.concatenate(binned)
        mean, sd = float(allc.mean()), float(allc.std()) or 1.0
        bank = np.concatenate([lowpass_bank((b - mean) / sd, f * dt_s, taus_s) for b in binned])
        ch = bank.std(axis=0)
        ch[ch == 0] = 1.0
        return cls(f * dt_s, tuple(taus_s), mean, sd, tuple(float(c) for c in ch))

    def inputs(self, current_pA: np.ndarray, dt_s: float) -> np.ndarray:
        """The whole protocol's current (pA, recording grid) -> inputs (n_bins, n_in), float32."""
        f = bin_factor(dt_s, self.bin_s)
        c = (block_mean(current_pA, f) - self.current_mean_pA) / self.current_sd_pA
        return (lowpass_bank(c, f * dt_s, self.taus_s) / np.asarray(self.channel_sd)).astype(np.float32)

    @property
    def n_inputs(self) -> int:
        return 1 + len(self.taus_s)

    def as_record(self) -> dict:
        return asdict(self)


def spike_fraction(spike_times_s: tuple[np.ndarray, ...] | list[np.ndarray], n_bins: int, bin_s: float) -> np.ndarray:
    """Fraction of repetitions with at least one spike in each bin (n_bins,), float32; the target."""
    counts = np.zeros(n_bins, np.float64)
    for ts in spike_times_s:
        k = np.unique(np.floor(np.asarray(ts) / bin_s).astype(np.int64))
        counts[k[(k >= 0) & (k < n_bins)]] += 1.0
    return (counts / max(1, len(spike_times_s))).astype(np.float32)


def window_bins(window_s: tuple[float, float], bin_s: float) -> tuple[int, int]:
    """First bin and one past the last bin of a window (s) on the protocol's bin grid."""
    return int(round(window_s[0] / bin_s)), int(round(window_s[1] / bin_s))
