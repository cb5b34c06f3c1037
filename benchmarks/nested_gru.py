"""The gru recipe under nested validation: every checkpoint also scored on the probe.

:class:`ProbedGRUModel` fits as the ``gru`` entry does (any of its settings: cell, inputs,
voltage target, held-out fraction), on a :class:`~selection_rules.NestedSplit`'s
inner part. Each evaluated checkpoint is scored on the run's own held-out part (what the
selection rules see) and, with the readout chosen there, on the probe: one
:class:`~selection_rules.ScoredCheckpoint` per evaluated step of each member (the
weight average's, where there is one: the checkpoints the entry can keep). The probe never feeds
a choice.

:class:`FoldedGRUModel` fits the gru on one fold of the inner part
(:func:`~selection_rules.time_folds`,
:func:`~selection_rules.stimulus_folds`): the pieces of a settings rule that
averages held-out P over folds.
"""
from __future__ import annotations

from typing import Any

from qsnmc import Fold, TrainingData

from qsnmc_plugins.gru.model import GRUModel, _HeldOut
from selection_rules import NestedSplit, ScoredCheckpoint


class FoldedGRUModel(GRUModel):
    """The gru, fitted on one selection fold: trained on ``fold.fit``, every choice on ``fold.heldout``."""

    def __init__(self, fold: Fold, seed: int = 0, budget: float = 1.0, **overrides: Any) -> None:
        if not isinstance(fold, Fold) or not isinstance(fold.fit, TrainingData):
            raise TypeError(f"a folded gru takes a Fold of TrainingData, got {type(fold).__name__}")
        super().__init__(seed, budget, **overrides)
        self.fold = fold

    def fit(self, train: TrainingData | None = None) -> dict[str, Any]:
        """Fit on the fold (``train``, if given, must be the fold's own fit part)."""
        if train is not None and train is not self.fold.fit:
            raise ValueError("a folded gru fits on its fold's fit part only")
        return self._fit_fold(self.fold, self.fold.fit.delta_s)


class ProbedGRUModel(GRUModel):
    """The gru, fitted on ``split.inner``; :attr:`checkpoints` holds every evaluated checkpoint's scores."""

    def __init__(self, split: NestedSplit, run: str, seed: int = 0, budget: float = 1.0, **overrides: Any) -> None:
        if not isinstance(split, NestedSplit):
            raise TypeError(f"a probed gru takes a NestedSplit of TrainingData, got {type(split).__name__}")
        super().__init__(seed, budget, **overrides)
        self.split, self.run = split, run
        #: every evaluated checkpoint the entry could keep, with its held-out and probe scores
        self.checkpoints: list[ScoredCheckpoint] = []

    def fit(self, train: TrainingData | None = None) -> dict[str, Any]:
        """Fit on the split's inner part (``train``, if given, must be that very object)."""
        if train is not None and train is not self.split.inner:
            raise ValueError("a probed gru fits on its nested split's inner part only")
        return super().fit(self.split.inner)

    def _train_members(self, sequences, config, held: _HeldOut) -> list:
        probe = _HeldOut(Fold("probe", self.split.inner, self.split.probe), self.split.inner.delta_s, self.scaling,
                         held.seq_bins, held.burn_bins, self.settings)

        def evaluate(net) -> dict[str, float]:
            scores, readout = held.evaluate_with_readout(net)
            hz = probe.hazards([net])
            return {**scores, "probe_p": probe.scorer(probe.spikes([net], readout, hz)),
                    "probe_bce": probe.cross_entropy(hz)}

        held_evaluate, held.evaluate = held.evaluate, evaluate
        try:
            members = super()._train_members(sequences, config, held)
        finally:
            held.evaluate = held_evaluate
        # the checkpoints an entry can keep: the weight average's evaluations where there is one
        self.checkpoints = [ScoredCheckpoint(f"{self.run} member {k}" if len(members) > 1 else self.run, e["step"],
                                             e["gamma_over_r"], e["bce"], e["probe_p"], e["probe_bce"])
                            for k, m in enumerate(members) for e in (m.ema_curve or m.heldout_curve)]
        return members
