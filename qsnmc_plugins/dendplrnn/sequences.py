"""Per-stimulus training sequences and the training windows cut from them (numpy only).

Every stimulus is a sequence of its own: a window is always cut from one repetition of
one stimulus, never from two stimuli joined end to end, and each window starts with its
own teacher-forced warm-up (the burn-in) on that repetition's voltage.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StimulusSequence:
    """One stimulus' fit part on the network grid."""

    name: str
    voltage: np.ndarray  #: (n_reps, n_steps) standardised voltage
    inputs: np.ndarray  #: (n_steps, n_in) network inputs (float32), aligned with ``voltage``
    target: np.ndarray  #: (n_steps,) fraction of repetitions with a spike in each step
    weights: np.ndarray  #: (n_reps, n_steps) loss weights of the voltage (see ``preprocessing.spike_weights``)

    @property
    def n_steps(self) -> int:
        return int(self.voltage.shape[1])

    @property
    def n_reps(self) -> int:
        return int(self.voltage.shape[0])


@dataclass(frozen=True)
class Window:
    """One training window: repetition ``rep`` of stimulus ``stimulus``, steps ``[start, start + length)``."""

    stimulus: int
    rep: int
    start: int
    length: int


def sample_windows(sequences: list[StimulusSequence], batch_size: int, length: int,
                   rng: np.random.Generator) -> list[Window]:
    """``batch_size`` windows of ``length`` steps; stimuli drawn in proportion to the number of
    windows they hold, each window inside one repetition of one stimulus.

    Raises:
        ValueError: no stimulus has ``length`` steps.
    """
    spans = np.array([max(0, s.n_steps - length + 1) * s.n_reps for s in sequences], float)
    if spans.sum() <= 0:
        raise ValueError(f"no stimulus has {length} steps to train on")
    which = rng.choice(len(sequences), size=batch_size, p=spans / spans.sum())
    out = []
    for i in which:
        s = sequences[int(i)]
        out.append(Window(int(i), int(rng.integers(0, s.n_reps)), int(rng.integers(0, s.n_steps - length + 1)),
                          length))
    return out


def make_batch(sequences: list[StimulusSequence], windows: list[Window]) -> tuple[np.ndarray, ...]:
    """Voltage (N, L, 1), inputs (N, L, n_in), voltage weights (N, L) and spike targets (N, L) of the windows."""
    x, s, w, y = [], [], [], []
    for win in windows:
        q = sequences[win.stimulus]
        sl = slice(win.start, win.start + win.length)
        x.append(q.voltage[win.rep, sl])
        s.append(q.inputs[sl])
        w.append(q.weights[win.rep, sl])
        y.append(q.target[sl])
    return (np.stack(x)[..., None].astype(np.float32), np.stack(s).astype(np.float32),
            np.stack(w).astype(np.float32), np.stack(y).astype(np.float32))


def spike_fraction(spike_times_s: list[np.ndarray], n_steps: int, dt_s: float, t0_s: float) -> np.ndarray:
    """Fraction of repetitions with at least one spike in each step (step k covers
    ``[t0 + k dt, t0 + (k + 1) dt)``), shape (n_steps,)."""
    hit = np.zeros((len(spike_times_s), n_steps), bool)
    for r, ts in enumerate(spike_times_s):
        k = np.floor((np.asarray(ts) - t0_s) / dt_s + 1e-9).astype(int)
        hit[r, k[(k >= 0) & (k < n_steps)]] = True
    return hit.mean(axis=0) if len(spike_times_s) else np.zeros(n_steps)
