"""Per-stimulus training sequences and the windows drawn from them (numpy only).

Every stimulus is a sequence of its own: a window is always cut from a single stimulus' bins,
never from two stimuli joined end to end, and its targets lie inside that stimulus' span of
targets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StimulusSequence:
    """One stimulus on the network's bins; bins ``[target_start, target_stop)`` hold targets to fit."""

    name: str
    inputs: np.ndarray  #: (n_bins, n_in) network inputs, float32
    target: np.ndarray  #: (n_bins,) fraction of repetitions spiking per bin (0 outside the targets' span)
    target_start: int
    target_stop: int
    #: (n_reps, n_bins) the standardised recorded voltage, or None without a voltage target
    voltage: np.ndarray | None = None
    #: (n_reps, n_bins) the voltage's loss weights (0 where nothing was recorded), or None
    voltage_weights: np.ndarray | None = None

    @property
    def n_target_bins(self) -> int:
        return self.target_stop - self.target_start

    @property
    def n_reps(self) -> int:
        """Repetitions of the recorded voltage (1 without one)."""
        return 1 if self.voltage is None else int(self.voltage.shape[0])


@dataclass(frozen=True)
class Window:
    """A training window of stimulus ``stimulus`` whose first target bin is ``start``; ``rep``: the
    repetition it is cut from (None where none was drawn)."""

    stimulus: int
    start: int
    rep: int | None = None


def sample_windows(sequences: list[StimulusSequence], batch_size: int, length: int, rng: np.random.Generator,
                   per_repetition: bool = False) -> list[Window]:
    """``batch_size`` windows of ``length`` target bins, each inside one stimulus' span of targets.

    Stimuli are drawn in proportion to the windows they hold (``rng.choice``), then per window its
    start (``rng.integers``); with ``per_repetition``, a stimulus holds its windows once per repetition
    and each window's repetition is drawn before its start.

    Raises:
        ValueError: no stimulus has ``length`` target bins.
    """
    starts = [max(0, s.n_target_bins - length + 1) for s in sequences]
    held = np.array([n * s.n_reps for n, s in zip(starts, sequences)] if per_repetition else starts, float)
    if held.sum() <= 0:
        raise ValueError(f"no stimulus has {length} bins of targets to fit")
    windows = []
    for i in rng.choice(len(sequences), size=batch_size, p=held / held.sum()):
        s = sequences[i]
        rep = int(rng.integers(0, s.n_reps)) if per_repetition else None
        windows.append(Window(int(i), s.target_start + int(rng.integers(0, starts[i])), rep))
    return windows
