"""Nested validation of selection rules, inside the training data only.

A hazard entry chooses its checkpoint, readout and settings on a held-out part of its training
window. Whether a selection rule ranks candidates as the test window would is measured here one
level down: the training window is split in time once more, its last ``probe_fraction`` (the
*probe*) standing in for the test window, and a model fits on what is before it, with its own
held-out part inside that. Every candidate (an evaluated checkpoint of a run; a run is one setting
and seed) then has the rules' scores, computed without the probe, and its probe P. A rule is good
when its scores rank the candidates as their probe P does (Spearman's rho) and when what it keeps
scores well on the probe.

Only :class:`qsnmc.TrainingData` is accepted: test windows never reach this code.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.stats import spearmanr

from qsnmc import HeldOutStimulus, TrainingData


@dataclass(frozen=True, eq=False)
class NestedSplit:
    """Training data split for nested validation.

    Attributes:
        inner: what a model fits on (and holds its own part out of): every stimulus' training
            window but its last ``probe_fraction``.
        probe: the last ``probe_fraction`` of every stimulus' training window, with the
            recorded spike times (s): scored only, never fitted or selected on.
        probe_fraction: that fraction (of each training window's samples).
    """

    inner: TrainingData
    probe: tuple[HeldOutStimulus, ...]
    probe_fraction: float


def nested_split(train: TrainingData, probe_fraction: float = 0.2) -> NestedSplit:
    """The training data's inner part and probe (its last ``probe_fraction``; see the module).

    Raises:
        TypeError: ``train`` is not :class:`qsnmc.TrainingData` (a challenge, a test stimulus):
            the probe must come from training windows only.
        ValueError: a fraction outside (0, 1), or a window too short to split.
    """
    if not isinstance(train, TrainingData):
        raise TypeError(f"nested validation takes TrainingData (training windows only), got {type(train).__name__}: "
                        "test windows never reach selection")
    fold = train.time_split(probe_fraction)
    windows = {s.name: s.window_s for s in train.stimuli}
    for h in fold.heldout:  # by construction; a guard against a future split that is not
        lo, hi = windows[h.name]
        if not lo <= h.stimulus.window_s[0] < h.stimulus.window_s[1] <= hi:
            raise ValueError(f"probe window {h.stimulus.window_s} of {h.name!r} is outside its training window")
    return NestedSplit(fold.fit, fold.heldout, probe_fraction)


@dataclass(frozen=True)
class ScoredCheckpoint:
    """One candidate: an evaluated checkpoint of one run, its scores on the run's held-out part
    (the rules' information) and on the probe (the verdict).

    Attributes:
        run: the run's label (its setting and seed).
        step: the optimiser step of the checkpoint.
        held_out_p: P (Gamma/R) on the run's held-out part, with the readout chosen there.
        held_out_bce: mean cross-entropy per bin of the hazard on the held-out part (nats).
        probe_p: P on the probe with that same readout.
        probe_bce: cross-entropy on the probe (nats).
    """

    run: str
    step: int
    held_out_p: float
    held_out_bce: float
    probe_p: float
    probe_bce: float

    def as_record(self) -> dict:
        return asdict(self)


#: selection rules: a candidate's score (higher is kept), from its held-out part only
RULES: dict[str, Callable[[ScoredCheckpoint], float]] = {
    "held-out P": lambda c: c.held_out_p,
    "held-out cross-entropy": lambda c: -c.held_out_bce,
    "last checkpoint": lambda c: float(c.step),
}


def rank_agreement(rule_scores: Sequence[float], probe_scores: Sequence[float]) -> float:
    """Spearman's rho between a rule's scores and the probe's over the pairs where both are finite;
    NaN with fewer than 3 such pairs or a constant side."""
    x, y = np.asarray(rule_scores, float), np.asarray(probe_scores, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan
    return float(spearmanr(x[ok], y[ok]).statistic)


def picked(candidates: Sequence[ScoredCheckpoint], rule: str) -> ScoredCheckpoint:
    """The candidate ``rule`` keeps (its highest score, the first on ties; NaN scores never kept)."""
    score = RULES[rule]
    finite = [c for c in candidates if math.isfinite(score(c))]
    if not finite:
        raise ValueError(f"no candidate has a finite {rule!r} score")
    return max(finite, key=score)


def agreement(candidates: Sequence[ScoredCheckpoint], rule: str) -> dict[str, float]:
    """How ``rule`` ranks ``candidates`` against their probe P.

    Returns:
        ``checkpoints``: rho over each run's checkpoints, averaged over runs;
        ``runs``: rho over runs, each represented by the checkpoint the rule keeps in it (the
        choice of a setting); ``pooled``: rho over every candidate; ``kept_probe_p``: the probe P
        of what the rule keeps, averaged over runs; ``regret``: the best probe P in each run less
        that of the kept checkpoint, averaged over runs.
    """
    score = RULES[rule]
    runs: dict[str, list[ScoredCheckpoint]] = {}
    for c in candidates:
        runs.setdefault(c.run, []).append(c)
    within = [rank_agreement([score(c) for c in cs], [c.probe_p for c in cs]) for cs in runs.values()]
    kept = [picked(cs, rule) for cs in runs.values()]
    return {
        "checkpoints": float(np.nanmean(within)) if np.isfinite(within).any() else math.nan,
        "runs": rank_agreement([score(c) for c in kept], [c.probe_p for c in kept]),
        "pooled": rank_agreement([score(c) for c in candidates], [c.probe_p for c in candidates]),
        "kept_probe_p": float(np.mean([c.probe_p for c in kept])),
        "regret": float(np.mean([max(c.probe_p for c in cs) - k.probe_p for cs, k in zip(runs.values(), kept)])),
        "n_runs": len(runs),
        "n_candidates": len(candidates),
    }
