"""From recordings to the network's 1 ms bins: the inputs (current and its filtrates).

Units outside this module: s, pA. Inside: bin indices on a grid that starts at the
protocol's time 0 (bin k covers ``[k * bin_s, (k + 1) * bin_s)``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qsnmc import block_mean, samples_per_step

from qsnmc_plugins.hazard.inputs import input_columns


@dataclass(frozen=True)
class InputScaling:
    """How the binned current and its filtrates become the network's standardised inputs."""

    bin_s: float  #: bin width (s)
    taus_s: tuple[float, ...]  #: time constants of the low-pass filtrates (s)
    current_mean_pA: float  #: mean of the binned fit-part current (pA)
    current_sd_pA: float  #: SD of the binned fit-part current (pA)
    #: SD of each input channel (current, filtrates) over the fit part, after standardising the
    #: current (so each channel has unit SD)
    channel_sd: tuple[float, ...]

    @classmethod
    def fit(cls, currents_pA: list[np.ndarray], dt_s: float, bin_s: float, taus_s: tuple[float, ...]) -> "InputScaling":
        """From the fit-part currents (pA, one array per stimulus, recording grid)."""
        f = samples_per_step(dt_s, bin_s)
        binned = [block_mean(c, f) for c in currents_pA]
        allc = np.concatenate(binned)
        mean, sd = float(allc.mean()), float(allc.std()) or 1.0
        bank = np.concatenate([input_columns((b - mean) / sd, f * dt_s, taus_s) for b in binned])
        ch = bank.std(axis=0)
        ch[ch == 0] = 1.0
        return cls(f * dt_s, tuple(taus_s), mean, sd, tuple(float(c) for c in ch))

    def inputs(self, current_pA: np.ndarray, dt_s: float) -> np.ndarray:
        """The whole protocol's current (pA, recording grid) -> inputs (n_bins, n_in), float32."""
        f = samples_per_step(dt_s, self.bin_s)
        c = (block_mean(current_pA, f) - self.current_mean_pA) / self.current_sd_pA
        return (input_columns(c, f * dt_s, self.taus_s) / np.asarray(self.channel_sd)).astype(np.float32)

    def as_record(self) -> dict:
        return asdict(self)


def window_bins(window_s: tuple[float, float], bin_s: float) -> tuple[int, int]:
    """First bin and one past the last bin of a window (s) on the protocol's bin grid."""
    return int(round(window_s[0] / bin_s)), int(round(window_s[1] / bin_s))
