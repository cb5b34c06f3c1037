"""The recurrent entries' input channels: the current and its causal low-pass filtrates."""
from __future__ import annotations

import numpy as np

from qsnmc import lowpass_bank


def input_columns(current: np.ndarray, step_s: float, taus_s: tuple[float, ...]) -> np.ndarray:
    """The current (T,) sampled every ``step_s`` (s) and its low-pass filtrates of time constants
    ``taus_s`` (s) (:func:`qsnmc.lowpass_bank`: unit DC gain, started at steady state, as if the
    current had been constant before the protocol's start), as columns (T, 1 + len(taus_s)), float64."""
    return np.ascontiguousarray(np.column_stack([current, lowpass_bank(current, step_s, taus_s).T]))
