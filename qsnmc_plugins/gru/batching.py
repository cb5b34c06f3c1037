"""Training windows and prediction chunks on per-stimulus sequences (numpy only).

Every stimulus is a sequence of its own: a window or chunk is always cut from a single
stimulus' bins, never from two stimuli joined end to end. A window is ``burn_bins`` of
burn-in (inputs only: the network's state settles from zero) followed by ``seq_bins``
whose targets enter the loss. Bins before the protocol's start are padded with the first
input row (a constant current before the protocol).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StimulusSequence:
    """One stimulus on the bin grid; bins ``[target_start, target_stop)`` hold targets to fit."""

    name: str
    inputs: np.ndarray  #: (n_bins, n_in) network inputs from the protocol's start, float32
    target: np.ndarray  #: (n_bins,) fraction of repetitions spiking per bin (0 outside the targets' span)
    target_start: int
    target_stop: int
    #: (n_reps, n_bins) standardised recorded voltage (the auxiliary target; bins outside the
    #: recording repeat its nearest recorded bin), or None without a voltage target
    voltage: np.ndarray | None = None
    #: (n_reps, n_bins) the voltage's loss weights (0 outside the recording), or None
    voltage_weights: np.ndarray | None = None

    @property
    def n_target_bins(self) -> int:
        return self.target_stop - self.target_start


def padded_rows(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of ``x``, rows before 0 repeating row 0 (``stop <= len(x)``)."""
    if start >= 0:
        return x[start:stop]
    return np.concatenate([np.repeat(x[:1], -start, axis=0), x[:stop]], axis=0)


def sample_windows(sequences: list[StimulusSequence], batch_size: int, seq_bins: int,
                   rng: np.random.Generator) -> list[tuple[int, int]]:
    """``batch_size`` (stimulus index, first target bin) pairs; stimuli drawn in proportion to
    their target bins, each window's ``seq_bins`` targets inside that stimulus' span.

    Raises:
        ValueError: no stimulus has ``seq_bins`` target bins.
    """
    spans = np.array([max(0, s.n_target_bins - seq_bins + 1) for s in sequences], float)
    if spans.sum() <= 0:
        raise ValueError(f"no stimulus has {seq_bins} bins of targets to fit")
    which = rng.choice(len(sequences), size=batch_size, p=spans / spans.sum())
    return [(int(i), sequences[i].target_start + int(rng.integers(0, int(spans[i])))) for i in which]


def make_batch(sequences: list[StimulusSequence], picks: list[tuple[int, int]], seq_bins: int,
               burn_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (B, burn_bins + seq_bins, n_in) and targets (B, seq_bins) of the picked windows."""
    xs, ys = [], []
    for i, start in picks:
        s = sequences[i]
        xs.append(padded_rows(s.inputs, start - burn_bins, start + seq_bins))
        ys.append(s.target[start:start + seq_bins])
    return np.stack(xs), np.stack(ys)


def voltage_batch(sequences: list[StimulusSequence], picks: list[tuple[int, int]], seq_bins: int, burn_bins: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The recorded voltage of one random repetition per picked window: (B, burn_bins + seq_bins)
    (the burn-in too, for teacher forcing) and its loss weights (B, seq_bins)."""
    vs, ws = [], []
    for i, start in picks:
        s = sequences[i]
        r = int(rng.integers(0, s.voltage.shape[0]))
        vs.append(padded_rows(s.voltage[r], start - burn_bins, start + seq_bins))
        ws.append(s.voltage_weights[r, start:start + seq_bins])
    return np.stack(vs), np.stack(ws)


def prediction_chunks(inputs: np.ndarray, start: int, stop: int, seq_bins: int,
                      burn_bins: int) -> tuple[np.ndarray, int]:
    """Inputs of consecutive chunks covering bins ``[start, stop)`` of one stimulus, each with
    its own burn-in (as in training): (n_chunks, burn_bins + seq_bins, n_in), and the number of
    chunks. The last chunk is padded at its end with the last input row; its extra output is dropped.
    """
    n_chunks = max(1, -(-(stop - start) // seq_bins))
    rows = []
    for c in range(n_chunks):
        a = start + c * seq_bins
        b = a + seq_bins
        part = padded_rows(inputs, a - burn_bins, min(b, inputs.shape[0]))
        if part.shape[0] < burn_bins + seq_bins:
            part = np.concatenate([part, np.repeat(part[-1:], burn_bins + seq_bins - part.shape[0], axis=0)])
        rows.append(part)
    return np.stack(rows), n_chunks
