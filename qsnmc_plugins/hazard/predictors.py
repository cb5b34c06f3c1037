"""The predictor an ensemble entry keeps: each member alone or an ensemble of its best members
(their outputs averaged before spike detection), each with its own best readout on the held-out
part; by the rule ``"best"`` the one of highest held-out P is kept, by ``"ensemble"`` the average of
every member; :class:`EnsembleModel` predicts with it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np

from qsnmc import Candidate, Model, Stimulus, best_candidate


@dataclass(frozen=True)
class Predictor:
    """A predictor: its name, the members it averages (indices), its readout and held-out P."""

    name: str
    members: tuple[int, ...]
    readout: Any  #: has ``as_record()``
    held_out_p: float

    def candidate(self) -> Candidate:
        return Candidate({"predictor": self.name, "members": list(self.members)}, None, self.held_out_p,
                         {"readout": self.readout.as_record()})


def compare_predictors(n_members: int, best_readout: Callable[[tuple[int, ...]], tuple[Any, float]]
                       ) -> list[Predictor]:
    """Every member alone (``"member k"``), then the ensembles of the best 2 .. n members of finite
    held-out P (``"ensemble of best n"``; all of them: ``"ensemble"``), each member ranked by its P alone.

    Args:
        best_readout: member indices -> (their ensemble's best readout, its held-out P).
    """
    singles = [Predictor(f"member {k}", (k,), *best_readout((k,))) for k in range(n_members)]
    ranked = sorted(range(n_members), key=lambda k: -singles[k].held_out_p)
    finite = [k for k in ranked if math.isfinite(singles[k].held_out_p)]
    ensembles = []
    for n_best in range(2, len(finite) + 1):
        idx = tuple(sorted(finite[:n_best]))
        name = "ensemble" if n_best == n_members else f"ensemble of best {n_best}"
        ensembles.append(Predictor(name, idx, *best_readout(idx)))
    return singles + ensembles


def best_predictor(predictors: list[Predictor]) -> Predictor:
    """The predictor of highest held-out P (the first on ties)."""
    best = best_candidate([p.candidate() for p in predictors])
    return next(p for p in predictors if p.name == best.choice["predictor"])


PredictorRule = Literal["best", "ensemble"]


def kept_predictor(predictors: list[Predictor], n_members: int, rule: PredictorRule = "best") -> Predictor:
    """The predictor ``rule`` keeps: ``"best"``, that of highest held-out P; ``"ensemble"``, the
    average of all ``n_members`` (a fixed choice: no selection noise), or the best where that
    average's held-out P is not finite (a member whose free run diverged)."""
    if rule == "ensemble":
        every = next((p for p in predictors if len(p.members) == n_members), None)
        if every is not None and math.isfinite(every.held_out_p):
            return every
    elif rule != "best":
        raise ValueError(f"predictor rule must be 'best' or 'ensemble', got {rule!r}")
    return best_predictor(predictors)


class EnsembleModel(Model):
    """Base of an ensemble entry's model: every predictor compared in its fit, by name, as (its members,
    its readout); it predicts with the kept one, or any other (:meth:`predict_with`), through the
    subclass's ``_predict(stimulus, members, readout)``."""

    variant = "no refit: the searched model predicts"  # the kept checkpoints are the fit's networks
    predictors: dict[str, tuple[list, Any]]
    chosen: str  #: the kept predictor's name

    def choose_predictor(self, members: list, best_readout: Callable[[list], tuple[Any, float]],
                         rule: PredictorRule = "best") -> tuple[list[Predictor], Predictor]:
        """Every predictor of ``members`` (:func:`compare_predictors`), kept by name, and the one
        ``rule`` keeps (:func:`kept_predictor`). ``best_readout``: members -> (their ensemble's best
        readout, its held-out P)."""
        predictors = compare_predictors(len(members), lambda idx: best_readout([members[i] for i in idx]))
        self.predictors = {p.name: ([members[i] for i in p.members], p.readout) for p in predictors}
        kept = kept_predictor(predictors, len(members), rule)
        self.chosen = kept.name
        return predictors, kept

    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) inside the window from the kept predictor: one deterministic train."""
        return self.predict_with(stimulus, self.chosen)

    def predict_with(self, stimulus: Stimulus, predictor: str) -> np.ndarray:
        """Spike times (s) from one of the predictors compared in the fit (``"member 0"``, ``"ensemble"``,
        ...; see the fit record's ``candidates``)."""
        members, readout = self.predictors[predictor]
        return self._predict(stimulus, members, readout)
