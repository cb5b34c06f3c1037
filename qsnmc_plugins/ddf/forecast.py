"""Free-running the DDF map on the injected current alone.

The loop is sequential in time but vectorised over the RBF centres and over a batch of
weight vectors (e.g. several ridge penalties sharing one set of centres), so that many
candidate maps are validated in one pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsnmc import portable_exp
from qsnmc_plugins.ddf.features import EmbeddingConfig, RBFLayer


@dataclass
class ForecastResult:
    """A free run's standardised voltage and its runaway report."""

    v: np.ndarray  #: standardised voltage ``(batch, n_steps)``; column k is the forecast k+1 steps ahead.
    runaway_steps: np.ndarray  #: per batch member, how many steps left the allowed range (and were clipped).
    first_runaway_step: np.ndarray  #: per batch member, the first such step, or -1.

    @property
    def ran_away(self) -> np.ndarray:
        return self.runaway_steps > 0


def free_run(config: EmbeddingConfig, rbf: RBFLayer, weights: np.ndarray, drive: np.ndarray, v_history: np.ndarray,
             slow_state: np.ndarray, slow_alphas: np.ndarray, v_range: tuple[float, float]) -> ForecastResult:
    """Iterate ``v(n+1) = v(n) + w_rbf . phi(z(n)) + w_lin . [1, i(n), i(n+1), s(n), (delays)]``.

    Args:
        config: the embedding (dimension, delay, slow filters).
        rbf: the RBF layer.
        weights: ``(batch, n_centres + n_linear)`` (RBF weights, then bias, current, slow, delays).
        drive: standardised current ``[i(n), i(n+1)]`` for each step, ``(n_steps, 2)``.
        v_history: the last ``span + 1`` standardised voltages, oldest first,
            ``(span + 1,)`` or ``(batch, span + 1)``.
        slow_state: slow filter values ``input_lag`` samples before the last history sample,
            ``(n_slow,)`` or ``(batch, n_slow)``.
        slow_alphas: per-step decay of the slow filters ``(n_slow,)``.
        v_range: allowed standardised range; a forecast outside it is a runaway, clipped and counted.

    Returns:
        A :class:`ForecastResult`.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    batch = weights.shape[0]
    n_steps = int(drive.shape[0])
    nc = rbf.n_centres
    n_slow = slow_alphas.size
    w_rbf = np.ascontiguousarray(weights[:, :nc])
    # bias and current do not depend on the state: computed for the whole run (elementwise, no BLAS)
    drive = np.asarray(drive, dtype=np.float64)
    inputs = weights[:, nc][None, :] + drive[:, 0, None] * weights[None, :, nc + 1] \
        + drive[:, 1, None] * weights[None, :, nc + 2]
    w_slow = weights[:, nc + 3 : nc + 3 + n_slow].copy()
    w_state = weights[:, nc + 3 + n_slow :].copy() if config.linear_state else None
    hist = config.span + 1
    buf = np.empty((batch, hist + n_steps))
    buf[:, :hist] = v_history
    slow = np.broadcast_to(np.asarray(slow_state, dtype=np.float64), (batch, n_slow)).copy()
    one_minus_a = 1.0 - slow_alphas
    gain = config.slow_gain
    centres = rbf.centres[None, :, :]
    neg_gain = -rbf._gain
    lo, hi = v_range
    lag_idx = hist - 1 - config.lags()  # columns of z(0)'s delays in buf
    slow_in_rbf = n_slow > 0 and gain > 0
    z = np.empty((batch, config.n_rbf_inputs))
    runaway = np.zeros(batch, dtype=np.int64)
    first = np.full(batch, -1, dtype=np.int64)
    for n in range(n_steps):
        z[:, : config.dimension] = buf[:, lag_idx + n]
        if slow_in_rbf:
            z[:, config.dimension :] = gain * slow
        diff = z[:, None, :] - centres  # squared distances coordinate by coordinate: no BLAS (see ridge.py)
        d2 = (diff * diff).sum(axis=2)
        d2 *= neg_gain
        portable_exp(d2, out=d2)  # not np.exp, which rounds differently on CPUs with AVX-512 (see qsnmc.portable_exp)
        v_now = buf[:, hist - 1 + n]
        dv = (d2 * w_rbf).sum(axis=1) + inputs[n]
        if n_slow:
            dv += (w_slow * slow).sum(axis=1)
        if w_state is not None:
            dv += (w_state * z[:, : config.dimension]).sum(axis=1)
        v_next = v_now + dv
        if not (lo <= v_next.min() and v_next.max() <= hi):  # also catches NaN
            bad = ~((v_next >= lo) & (v_next <= hi))
            first[bad & (first < 0)] = n
            runaway += bad
            v_next = np.clip(np.nan_to_num(v_next, nan=lo), lo, hi)
        buf[:, hist + n] = v_next
        if n_slow:
            slow = slow_alphas * slow + one_minus_a * buf[:, hist + n - config.input_lag, None]
    return ForecastResult(buf[:, hist:], runaway, first)
