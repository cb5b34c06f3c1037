"""Nested validation of selection rules, inside the training data only.

A hazard entry chooses its checkpoint, readout and settings on a held-out part of its training
window. Whether a selection rule ranks candidates as the test window would is measured here one
level down: the training window is split in time once more, its last ``probe_fraction`` (the
*probe*) standing in for the test window, and a model fits on what is before it, with its own
held-out part inside that. Every candidate (an evaluated checkpoint of a run; a run is one setting
and seed) then has the rules' scores, computed without the probe, and its probe P. A rule is good
when its scores rank the candidates as their probe P does (Spearman's rho) and when what it keeps
scores well on the probe. :func:`time_folds` and :func:`stimulus_folds` cut the inner part into
folds, for rules that score a setting over several held-out parts.

Only :class:`qsnmc.TrainingData` is accepted: test windows never reach this code.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.stats import spearmanr

from qsnmc import Fold, HeldOutStimulus, Stimulus, TrainingData, TrainingStimulus


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


def _training_only(data: object) -> TrainingData:
    if not isinstance(data, TrainingData):
        raise TypeError(f"selection folds take TrainingData (a nested split's inner part), got "
                        f"{type(data).__name__}: test windows never reach selection")
    return data


def time_folds(inner: TrainingData, k: int = 3) -> list[Fold]:
    """``k`` blocked time folds of every stimulus' window: fold ``j`` holds out the ``j``-th of
    ``k`` equal blocks (by samples) of each window and fits on the rest, the parts before and after
    the block as two sequences (named ``<name>:before`` and ``<name>:after``).

    A settings rule built on them averages a setting's held-out P over positions in the recording,
    where the entry's single time split only ever scores its end.

    Raises:
        TypeError: ``inner`` is not :class:`qsnmc.TrainingData`.
        ValueError: ``k`` < 2, or a block shorter than 2 samples.
    """
    inner = _training_only(inner)
    if k < 2:
        raise ValueError(f"time folds need k >= 2, got {k}")
    folds = []
    for j in range(k):
        fitted, heldout = [], []
        for s in inner.stimuli:
            n = s.voltage_mV.shape[1]
            lo, hi = int(round(j * n / k)), int(round((j + 1) * n / k))
            if hi - lo < 2:
                raise ValueError(f"stimulus {s.name!r}: a {n}-sample window is too short for {k} time folds")
            t0 = s.window_s[0]
            lo_s, hi_s = t0 + lo * s.dt_s, t0 + hi * s.dt_s
            trains = [np.asarray(t) for t in s.spike_times_s]
            for part, a, b, a_s, b_s in (("before", 0, lo, t0, lo_s), ("after", hi, n, hi_s, s.window_s[1])):
                if b - a >= 2:
                    fitted.append(TrainingStimulus(f"{s.name}:{part}", s.dt_s, s.current_pA, (a_s, b_s),
                                                   s.voltage_mV[:, a:b],
                                                   tuple(t[(t >= a_s) & (t < b_s)] for t in trains)))
            heldout.append(HeldOutStimulus(Stimulus(s.name, s.dt_s, s.current_pA, (lo_s, hi_s), s.n_repetitions),
                                           tuple(t[(t >= lo_s) & (t < hi_s)] for t in trains),
                                           s.voltage_mV[:, lo:hi]))
        folds.append(Fold(f"time fold {j + 1} of {k}", TrainingData(inner.challenge, tuple(fitted), inner.delta_s),
                          tuple(heldout)))
    return folds


def stimulus_folds(inner: TrainingData, k: int = 4) -> list[Fold]:
    """``k`` folds that hold whole stimuli out (stimulus ``i`` in fold ``i mod k``; with ``k`` the
    number of stimuli, leave-one-stimulus-out); each fits on the other stimuli.

    Raises:
        TypeError: ``inner`` is not :class:`qsnmc.TrainingData`.
        ValueError: ``k`` < 2 or more folds than stimuli.
    """
    inner = _training_only(inner)
    if not 2 <= k <= len(inner.stimuli):
        raise ValueError(f"stimulus folds need 2 <= k <= {len(inner.stimuli)} (the stimuli), got {k}")
    folds = []
    for j in range(k):
        out = [s for i, s in enumerate(inner.stimuli) if i % k == j]
        rest = tuple(s for i, s in enumerate(inner.stimuli) if i % k != j)
        folds.append(Fold(f"stimuli {', '.join(s.name for s in out)} held out",
                          TrainingData(inner.challenge, rest, inner.delta_s),
                          tuple(HeldOutStimulus(Stimulus(s.name, s.dt_s, s.current_pA, s.window_s, s.n_repetitions),
                                                s.spike_times_s, s.voltage_mV) for s in out)))
    return folds


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
