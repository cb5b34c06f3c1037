"""Sparse teacher forcing (Mikhaeil, Monfared & Durstewitz 2022): the forcing schedule."""
from __future__ import annotations

import numpy as np


def forcing_schedule(n_steps: int, tau: int, burn_in: int = 0) -> np.ndarray:
    """Boolean mask (n_steps,): True where the observed units are replaced by the data.

    Steps ``0 .. burn_in - 1`` are all forced (the hidden units settle onto the
    recording; no loss is taken there). From the anchor ``a = max(burn_in - 1, 0)`` on,
    forcing happens exactly every ``tau`` steps (``t = a + k * tau``) and the network
    runs freely in between. ``tau = 1`` is classical teacher forcing.
    """
    if tau < 1:
        raise ValueError(f"tau must be >= 1 step, got {tau}")
    if not 0 <= burn_in <= n_steps:
        raise ValueError(f"burn_in must be in [0, {n_steps}], got {burn_in}")
    anchor = max(burn_in - 1, 0)
    t = np.arange(n_steps)
    return (t <= anchor) | ((t - anchor) % tau == 0)
