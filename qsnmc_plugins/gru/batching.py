"""Training batches and prediction chunks on per-stimulus sequences (numpy only).

A stimulus' sequence (:class:`~qsnmc_plugins.hazard.windows.StimulusSequence`) holds the whole
protocol's bins, and its windows (:func:`~qsnmc_plugins.hazard.windows.sample_windows`) are
``burn_bins`` of burn-in (inputs only: the network's state settles from zero) followed by
``seq_bins`` whose targets enter the loss. Bins before the protocol's start are padded with the
first input row (a constant current before the protocol); the voltage target's bins outside the
recording repeat its nearest recorded bin.
"""
from __future__ import annotations

import numpy as np

from qsnmc_plugins.hazard.windows import StimulusSequence, Window


def padded_rows(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of ``x``, rows before 0 repeating row 0 (``stop <= len(x)``)."""
    if start >= 0:
        return x[start:stop]
    return np.concatenate([np.repeat(x[:1], -start, axis=0), x[:stop]], axis=0)


def make_batch(sequences: list[StimulusSequence], picks: list[Window], seq_bins: int,
               burn_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (B, burn_bins + seq_bins, n_in) and targets (B, seq_bins) of the picked windows."""
    xs, ys = [], []
    for w in picks:
        s = sequences[w.stimulus]
        xs.append(padded_rows(s.inputs, w.start - burn_bins, w.start + seq_bins))
        ys.append(s.target[w.start:w.start + seq_bins])
    return np.stack(xs), np.stack(ys)


def voltage_batch(sequences: list[StimulusSequence], picks: list[Window], seq_bins: int, burn_bins: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The recorded voltage of one random repetition per picked window: (B, burn_bins + seq_bins)
    (the burn-in too, for teacher forcing) and its loss weights (B, seq_bins)."""
    vs, ws = [], []
    for w in picks:
        s = sequences[w.stimulus]
        r = int(rng.integers(0, s.n_reps))
        vs.append(padded_rows(s.voltage[r], w.start - burn_bins, w.start + seq_bins))
        ws.append(s.voltage_weights[r, w.start:w.start + seq_bins])
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
