"""A differentiable (PyTorch) free run of the DDF map, step for step the same as :func:`forecast.free_run`.

:func:`forecast.free_run` runs several weight vectors from one history (validation of
several ridge penalties); :func:`torch_free_run` runs one map from a batch of histories
(rollouts started at many points of the recording), so that the map's parameters can be
refined by gradient descent on the error of multi-step forecasts (see :mod:`refine`).
Everything is in standardised units (see :class:`features.Standardiser`).
"""
from __future__ import annotations

import torch

from qsnmc_plugins.ddf.features import EmbeddingConfig


def torch_free_run(
    config: EmbeddingConfig,
    centres: torch.Tensor,
    widths: torch.Tensor,
    weights: torch.Tensor,
    drive: torch.Tensor,
    v_history: torch.Tensor,
    slow_state: torch.Tensor,
    slow_alphas: torch.Tensor,
    v_range: tuple[float, float],
) -> torch.Tensor:
    """Iterate ``v(n+1) = v(n) + w_rbf . phi(z(n)) + w_lin . [1, i(n), i(n+1), s(n), (delays)]``.

    The same arithmetic, in the same order, as :func:`forecast.free_run` (a forecast
    outside ``v_range`` is clipped, NaN goes to the lower bound), so that in float64 the
    two agree to rounding; differentiable in ``centres``, ``widths`` and ``weights``
    (clipped steps pass no gradient).

    Args:
        config: the embedding.
        centres: RBF centres ``(n_centres, n_rbf_inputs)``.
        widths: RBF widths ``sigma_q`` ``(n_centres,)``.
        weights: one weight vector ``(n_centres + n_linear,)`` (RBF weights, then bias,
            current, slow filters, delays).
        drive: standardised current ``[i(n), i(n+1)]`` per rollout and step ``(batch, n_steps, 2)``.
        v_history: the last ``span + 1`` standardised voltages per rollout, oldest first ``(batch, span + 1)``.
        slow_state: slow filter values ``input_lag`` samples before the last history
            sample ``(batch, n_slow)``.
        slow_alphas: per-step decay of the slow filters ``(n_slow,)``.
        v_range: allowed standardised range.

    Returns:
        The forecast ``(batch, n_steps)``; column k is k+1 steps ahead.
    """
    nc = centres.shape[0]
    n_slow = int(slow_alphas.shape[0])
    n_steps = int(drive.shape[1])
    w_rbf = weights[:nc]
    inputs = weights[nc] + drive @ weights[nc + 1 : nc + 3]  # (batch, n_steps)
    w_slow = weights[nc + 3 : nc + 3 + n_slow]
    w_state = weights[nc + 3 + n_slow :] if config.linear_state else None
    centres_t2 = 2.0 * centres.T
    c2 = (centres * centres).sum(dim=1)
    neg_gain = -1.0 / (2.0 * widths**2)
    lo, hi = v_range
    lags = [int(x) for x in config.lags()]
    slow_in_rbf = n_slow > 0 and config.slow_gain > 0
    cols = list(v_history.unbind(dim=1))
    slow = slow_state
    one_minus_a = 1.0 - slow_alphas
    out = []
    for n in range(n_steps):
        t = len(cols) - 1  # index of v(n)
        z_delay = torch.stack([cols[t - lag] for lag in lags], dim=1)
        z = torch.cat([z_delay, config.slow_gain * slow], dim=1) if slow_in_rbf else z_delay
        d2 = (z * z).sum(dim=1)[:, None] + c2 - z @ centres_t2
        phi = torch.exp(d2 * neg_gain)
        dv = (phi * w_rbf).sum(dim=1) + inputs[:, n]
        if n_slow:
            dv = dv + (w_slow * slow).sum(dim=1)
        if w_state is not None:
            dv = dv + (w_state * z_delay).sum(dim=1)
        v_next = torch.clamp(torch.nan_to_num(cols[t] + dv, nan=lo), lo, hi)
        cols.append(v_next)
        out.append(v_next)
        if n_slow:
            slow = slow_alphas * slow + one_minus_a * cols[t + 1 - config.input_lag][:, None]
    return torch.stack(out, dim=1)
