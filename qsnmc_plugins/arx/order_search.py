"""Choice of the ARX orders by free-running validation error on a held-out part.

Each candidate (:class:`ArxOrders`) is fitted on the fit part of the training window
(a sub-block of the accumulated normal equations), rejected if its autoregressive
part is unstable, then run free (current and recorded spike onsets as the only
inputs, no recorded voltage) over the whole window; its score is the RMS error of
that voltage against the spike-free recording on the held-out bins. The free-running
error, unlike the one-step residual, is what the spike rule will see.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from qsnmc_plugins.arx.free_run import teacher_forced_voltage
from qsnmc_plugins.arx.identification import ArxFilter, ArxOrders, GramAccumulator
from qsnmc_plugins.arx.stability import MAX_POLE_RADIUS, pole_radius

VOLTAGE_ORDERS = (1, 2, 3, 4, 6)
CURRENT_ORDERS = (1, 2, 4, 8)
RIDGES = (1e-6, 1e-3)


@dataclass
class HeldOutSet:
    """Held-out bins of one stimulus.

    Attributes:
        current_pA: binned current from the protocol's start to the window's end.
        onsets: per repetition, recorded spike onsets (protocol bins).
        voltage_mV: spike-free recorded voltage on the held-out bins, ``(n_reps, n_bins)``.
        keep: True for the held-out bins that were not cut out around a spike.
        start_bin: protocol bin of the first held-out bin.
    """

    current_pA: np.ndarray
    onsets: list[np.ndarray]
    voltage_mV: np.ndarray
    keep: np.ndarray
    start_bin: int


@dataclass
class Candidate:
    orders: ArxOrders
    rmse_mV: float
    one_step_rmse_mV: float
    pole_radius: float


def candidate_orders(n_spike_options: list[int], reduced: bool = False) -> list[ArxOrders]:
    """The grid of structures searched (240 by default; 8 when ``reduced``, for quick fits)."""
    if reduced:
        return [
            ArxOrders(na, nb, ns, 1e-3)
            for na, nb, ns in itertools.product(VOLTAGE_ORDERS[1::2], CURRENT_ORDERS[1::2], n_spike_options[-3::2])
        ]
    return [
        ArxOrders(na, nb, ns, lam)
        for na, nb, ns, lam in itertools.product(VOLTAGE_ORDERS, CURRENT_ORDERS, n_spike_options, RIDGES)
    ]


#: repetitions the held-out error is computed on (enough for a stable figure, and fast)
MAX_VALIDATION_REPS = 4


def held_out_rmse(model: ArxFilter, held: list[HeldOutSet]) -> float:
    """RMS error (mV) of the free-running voltage on the held-out, spike-free bins (first repetitions)."""
    sse, n = 0.0, 0
    for h in held:
        r = MAX_VALIDATION_REPS
        v = teacher_forced_voltage(model, h.current_pA, h.onsets[:r])
        v = v[:, h.start_bin : h.start_bin + h.voltage_mV.shape[1]]
        err = (v - h.voltage_mV[:r])[h.keep[:r]]
        sse += float(err @ err)
        n += err.size
    return float(np.sqrt(sse / max(n, 1)))


def search_orders(
    gram: GramAccumulator, held: list[HeldOutSet], candidates: list[ArxOrders], step_s: float, progress=None
) -> tuple[ArxOrders, list[Candidate], int]:
    """Best candidate by held-out free-running RMSE.

    Returns:
        ``(best orders, every stable candidate's figures sorted best first, number rejected as unstable)``.
    """
    results: list[Candidate] = []
    n_unstable = 0
    for orders in candidates:
        model = gram.solve(orders, step_s)
        radius = pole_radius(model.a)
        if progress is not None:
            progress.update(1)
        if radius > MAX_POLE_RADIUS:
            n_unstable += 1
            continue
        rmse = held_out_rmse(model, held)
        if not np.isfinite(rmse):
            n_unstable += 1
            continue
        results.append(Candidate(orders, rmse, float(np.sqrt(gram.residual_variance(orders, model))), radius))
    if not results:
        raise RuntimeError("every ARX candidate was unstable (poles outside the unit circle): no model to fit")
    results.sort(key=lambda c: c.rmse_mV)
    return results[0].orders, results, n_unstable


def candidate_record(c: Candidate) -> dict:
    return {**asdict(c.orders), "held_out_rmse_mV": c.rmse_mV, "one_step_rmse_mV": c.one_step_rmse_mV,
            "pole_radius": c.pole_radius}
