"""Training batches cut from per-stimulus sequences (numpy only).

A stimulus' sequence (:class:`~qsnmc_plugins.hazard.windows.StimulusSequence`) holds its fit part
only, every bin a target; a window (:func:`~qsnmc_plugins.hazard.windows.sample_windows` with
``per_repetition``) is cut from one repetition of one stimulus, and starts with its own
teacher-forced warm-up (the burn-in) on that repetition's voltage.
"""
from __future__ import annotations

import numpy as np

from qsnmc_plugins.hazard.windows import StimulusSequence, Window


def make_batch(sequences: list[StimulusSequence], windows: list[Window], length: int) -> tuple[np.ndarray, ...]:
    """Voltage (N, L, 1), inputs (N, L, n_in), voltage weights (N, L) and spike targets (N, L) of the
    windows of ``length`` (L) steps."""
    x, s, w, y = [], [], [], []
    for win in windows:
        q = sequences[win.stimulus]
        sl = slice(win.start, win.start + length)
        x.append(q.voltage[win.rep, sl])
        s.append(q.inputs[sl])
        w.append(q.voltage_weights[win.rep, sl])
        y.append(q.target[sl])
    return (np.stack(x)[..., None].astype(np.float32), np.stack(s).astype(np.float32),
            np.stack(w).astype(np.float32), np.stack(y).astype(np.float32))
