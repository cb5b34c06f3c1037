"""Group sweeps into stimuli: sweeps that injected the same current are repetitions of one stimulus.

The rule (found, not assumed): each sweep's current is averaged over bins of :data:`BIN_S`
(5 ms, so recording noise in a measured current, slow drift included, averages out while any
shape that lasts a few milliseconds stays); sweep *b* repeats the stimulus of sweep *a* when

    max |bin_a - bin_b| <= max(abs_tol_pA, rel_tol * SD(I_a))

with SD the standard deviation of sweep *a*'s current over its samples (pA). Defaults: 2 pA
and 0.1 SD. Sweeps are taken in order; each joins the first stimulus whose first sweep it
matches, or starts a new one. Sweeps of different lengths never match.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: bin (s) over which the currents are averaged before they are compared
BIN_S = 5e-3
#: defaults of the rule: absolute tolerance (pA) and fraction of the current's SD
ABS_TOL_PA = 2.0
REL_TOL_SD = 0.1


@dataclass
class Group:
    """One stimulus found: its sweeps (indices into the input) and how close their currents are.

    Attributes:
        members: indices of the sweeps, the first one the reference.
        tolerance_pA: the tolerance the others were matched with (pA).
        max_difference_pA: the largest binned difference to the reference among the members (pA).
    """

    members: list[int]
    tolerance_pA: float
    max_difference_pA: float = 0.0


def binned(current_pA: np.ndarray, dt_s: float, bin_s: float = BIN_S) -> np.ndarray:
    """The current (pA) averaged over consecutive bins of ``bin_s`` (the last partial bin dropped, unless it is all)."""
    width = max(1, int(round(bin_s / dt_s)))
    n = current_pA.size // width
    if n == 0:
        return np.array([current_pA.mean()])
    return current_pA[: n * width].reshape(n, width).mean(axis=1)


def group_repetitions(
    currents_pA: Sequence[np.ndarray], dt_s: float, *, abs_tol_pA: float = ABS_TOL_PA, rel_tol_sd: float = REL_TOL_SD,
) -> list[Group]:
    """The stimuli among sweeps' currents, by the rule of the module docstring.

    Args:
        currents_pA: each sweep's injected current (pA).
        dt_s: sampling step (s).
        abs_tol_pA: absolute tolerance (pA).
        rel_tol_sd: tolerance as a fraction of the reference sweep's current SD.

    Returns:
        The groups, in the order of their first sweep.
    """
    bins = [binned(np.asarray(c, np.float64), dt_s) for c in currents_pA]
    groups: list[Group] = []
    for k, b in enumerate(bins):
        for g in groups:
            ref = bins[g.members[0]]
            if ref.size != b.size or currents_pA[g.members[0]].size != currents_pA[k].size:
                continue
            diff = float(np.max(np.abs(ref - b)))
            if diff <= g.tolerance_pA:
                g.members.append(k)
                g.max_difference_pA = max(g.max_difference_pA, diff)
                break
        else:
            tol = max(abs_tol_pA, rel_tol_sd * float(np.std(currents_pA[k])))
            groups.append(Group([k], tol))
    return groups
