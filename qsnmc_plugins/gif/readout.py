"""Spike trains from a fitted GIF's escape rate: sampled, at a hazard level, or count-matched.

A free run (:func:`~qsnmc_plugins.gif.simulate.simulate_spikes`) from the protocol's start gives
spike bins; a spike at bin ``m`` is reported at the bin's centre plus the latency (the recorded
spike follows the model's threshold crossing), and only those inside the window count
(:func:`qsnmc.clip_to_window`, half-open).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from qsnmc import Stimulus, block_mean, clip_to_window, samples_per_step

from qsnmc_plugins.gif.simulate import simulate_spikes
from qsnmc_plugins.gif.subthreshold import Membrane
from qsnmc_plugins.gif.threshold import EscapeThreshold


@dataclass(frozen=True)
class Readout:
    """How spikes are read from the escape rate.

    Attributes:
        kind: ``"stochastic"``: one train sampled per repetition; ``"level"``: one deterministic
            train, a spike wherever the hazard reaches ``value`` (Hz); ``"count-matched"``: per
            stimulus, the level (of the level grid) whose train's count is closest (in log) to
            ``value`` times the mean count of trains sampled from the escape rate.
        value: the level (Hz) or the count scale; 0 for ``"stochastic"``.
    """

    kind: Literal["stochastic", "level", "count-matched"]
    value: float = 0.0

    def __str__(self) -> str:
        return {"stochastic": "stochastic", "level": f"level {self.value:g} Hz",
                "count-matched": f"count-matched x{self.value:g}"}[self.kind]


STOCHASTIC = Readout("stochastic")


@dataclass(frozen=True)
class FittedGIF:
    """A fitted GIF: membrane, threshold and the latency from threshold crossing to recorded spike (s)."""

    membrane: Membrane
    threshold: EscapeThreshold
    latency_s: float


def readout_trains(gif: FittedGIF, stimulus: Stimulus, readouts: Sequence[Readout], *, levels_hz: Sequence[float],
                   count_samples: int, model_step_s: float, seed: int) -> dict[Readout, np.ndarray | list[np.ndarray]]:
    """Spike times (s) inside ``stimulus.window_s`` for each readout: a list of one train per
    repetition (stochastic), or one train (a level, or count-matched among ``levels_hz`` with
    ``count_samples`` sampled trains estimating the expected count). Sampled trains draw from
    a generator keyed by ``seed`` and the stimulus' name."""
    factor = samples_per_step(stimulus.dt_s, model_step_s)
    step = stimulus.dt_s * factor
    n = min(stimulus.current_pA.size // factor, int(np.ceil(stimulus.window_s[1] / step)) + 1)
    current = block_mean(stimulus.current_pA[: n * factor], factor)

    def times(bins: np.ndarray) -> np.ndarray:
        return clip_to_window((bins + 0.5) * step + gif.latency_s, stimulus.window_s)

    def sampled(count: int, stream: int) -> list[np.ndarray]:
        key = [seed, zlib.crc32(stimulus.name.encode())]
        rng = np.random.default_rng(key if stream == 0 else [*key, stream])
        return [times(simulate_spikes(gif.membrane, gif.threshold, current, step, rng=rng)) for _ in range(count)]

    matched = [r for r in readouts if r.kind == "count-matched"]
    levels = {float(x) for x in levels_hz} if matched else set()
    levels |= {r.value for r in readouts if r.kind == "level"}
    by_level = {level: times(simulate_spikes(gif.membrane, gif.threshold, current, step, level_hz=level))
                for level in sorted(levels)}
    out: dict[Readout, np.ndarray | list[np.ndarray]] = {r: by_level[r.value] for r in readouts if r.kind == "level"}
    if STOCHASTIC in readouts:
        out[STOCHASTIC] = sampled(stimulus.n_repetitions, 0)
    if matched:
        expected = float(np.mean([t.size for t in sampled(count_samples, 1)]))
        for r in matched:
            level = min(levels_hz, key=lambda x: abs(np.log((by_level[x].size + 1.0) / (r.value * expected + 1.0))))
            out[r] = by_level[level]
    return out
