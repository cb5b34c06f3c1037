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

from qsnmc import Candidate
from qsnmc_plugins.arx.free_run import teacher_forced_voltage
from qsnmc_plugins.arx.identification import ArxFilter, ArxOrders, GramAccumulator
from qsnmc_plugins.arx.settings import ArxSettings
from qsnmc_plugins.arx.spike_basis import n_fine_lags
from qsnmc_plugins.arx.stability import pole_radius


@dataclass
class HeldOutSet:
    """Held-out bins of one stimulus."""

    current_pA: np.ndarray  #: binned current from the protocol's start to the window's end.
    onsets: list[np.ndarray]  #: per repetition, recorded spike onsets (protocol bins).
    voltage_mV: np.ndarray  #: spike-free recorded voltage on the held-out bins, ``(n_reps, n_bins)``.
    keep: np.ndarray  #: True for the held-out bins that were not cut out around a spike.
    start_bin: int  #: protocol bin of the first held-out bin.


def candidate_orders(step_s: float, settings: ArxSettings, budget: float) -> list[ArxOrders]:
    """The grid of structures a budget searches: 240 by default, 8 below ``reduced_search_below`` (quick fits)."""
    nv, nc = settings.voltage_orders, settings.current_orders
    n_spike = [n_fine_lags(step_s, settings.fine_s) + m for m in range(0, settings.n_cosines + 1, 2)]
    if budget < settings.reduced_search_below:
        return [ArxOrders(na, nb, ns, 1e-3) for na, nb, ns in itertools.product(nv[1::2], nc[1::2], n_spike[-3::2])]
    return [ArxOrders(na, nb, ns, lam) for na, nb, ns, lam in itertools.product(nv, nc, n_spike, settings.ridges)]


def held_out_rmse(model: ArxFilter, held: list[HeldOutSet], max_reps: int) -> float:
    """RMS error (mV) of the free-running voltage on the held-out, spike-free bins (first ``max_reps``)."""
    sse, n = 0.0, 0
    for h in held:
        v = teacher_forced_voltage(model, h.current_pA, h.onsets[:max_reps])
        v = v[:, h.start_bin : h.start_bin + h.voltage_mV.shape[1]]
        err = (v - h.voltage_mV[:max_reps])[h.keep[:max_reps]]
        sse += float(err @ err)
        n += err.size
    return float(np.sqrt(sse / max(n, 1)))


def search_orders(gram: GramAccumulator, held: list[HeldOutSet], candidates: list[ArxOrders], step_s: float,
                  settings: ArxSettings, progress) -> tuple[list[Candidate], int]:
    """Every stable candidate scored by its held-out free-running RMSE (objective: minus the RMSE).

    Returns:
        ``(the stable candidates in search order, number rejected as unstable)``; a candidate's
        ``choice`` is its :class:`ArxOrders` as a dict.
    """
    results: list[Candidate] = []
    n_unstable = 0
    for orders in candidates:
        model = gram.solve(orders, step_s)
        radius = pole_radius(model.a)
        progress.update(1)
        rmse = held_out_rmse(model, held, settings.max_validation_reps) if radius <= settings.max_pole_radius \
            else float("nan")
        if not np.isfinite(rmse):
            n_unstable += 1
            continue
        one_step = float(np.sqrt(gram.residual_variance(orders, model)))
        results.append(Candidate(asdict(orders), None, -rmse, {"held_out_rmse_mV": rmse, "one_step_rmse_mV": one_step,
                                                               "pole_radius": radius}))
    if not results:
        raise RuntimeError("every ARX candidate was unstable (poles outside the unit circle): no model to fit")
    return results, n_unstable
