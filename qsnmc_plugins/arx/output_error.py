"""Refinement of an ARX fit towards the free-running (output-error) optimum.

Least squares on the ARX equation minimises the one-step-ahead error, which at a
1 ms step is dominated by ``a_1 ~ 1`` and says little about the voltage the model
produces when it runs free. The Steiglitz-McBride iteration (Steiglitz & McBride
1965, IEEE Trans. Autom. Control 10:461; Ljung, *System Identification*, 1999,
section 10.4) keeps every step a linear least-squares problem: filter voltage,
current and spike regressors by ``1 / A_k(q)`` of the previous fit, refit the ARX
equation on the filtered signals, repeat. An iterate is kept only while it lowers
the held-out free-running voltage error and stays stable.
"""
from __future__ import annotations

from typing import Callable, Sequence

from qsnmc_plugins.arx.identification import ArxFilter, GramAccumulator, Series
from qsnmc_plugins.arx.stability import ar_polynomial, is_stable

#: bins skipped at the start of each series (transient of the prefilter started from zero)
PREFILTER_TRANSIENT_BINS = 300


def steiglitz_mcbride(initial: ArxFilter, layout: GramAccumulator, parts: Sequence[tuple[Series, slice]],
                      score: Callable[[ArxFilter], float] | None, n_iterations: int,
                      max_radius: float) -> tuple[ArxFilter, list[float]]:
    """Iterate prefiltered least squares from ``initial``.

    Args:
        initial: the ARX fit to start from (its orders are kept).
        layout: the equations it was solved from (their largest orders and spike-history basis).
        parts: the series and the bins of each to fit on.
        score: held-out error of a candidate (lower is better), or None to take the
            last of ``n_iterations`` iterates (when no data is held out).
        n_iterations: most prefiltered refits.
        max_radius: largest pole radius of an iterate that is kept (an unstable one ends the iteration).

    Returns:
        ``(best filter, score history starting with the initial fit's)``.
    """
    accept_all = score is None  # nothing held out: every iterate is accepted
    score = score or (lambda _: 0.0)
    best, best_score = initial, score(initial)
    history = [best_score]
    current = initial
    for _ in range(n_iterations):
        gram = GramAccumulator(layout.max_voltage, layout.max_current, layout.basis, initial.v_ref_mV,
                               initial.i_ref_pA, ar_polynomial(current.a))
        for series, rows in parts:
            start = max(rows.start or 0, PREFILTER_TRANSIENT_BINS)
            gram.add(series, slice(start, rows.stop))
        current = gram.solve(initial.orders, initial.step_s)
        if not is_stable(current.a, max_radius):
            history.append(float("nan"))
            break
        s = score(current)
        history.append(s)
        if accept_all or s < best_score - 1e-4:
            best, best_score = current, s
        else:
            break
    return best, history
