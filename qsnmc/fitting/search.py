"""Candidates of a structure or hyper-parameter search, scored on held-out training data.

A search is a function that returns candidates and their held-out scores without touching
the model; the model then refits the chosen one. :func:`best_candidate` picks it (the first of equal
objectives, so the order of the candidates breaks ties), :func:`candidates_record` lists them
for the fit record.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from qsnmc.scoring.validation import ValidationScore


@dataclass(frozen=True)
class Candidate:
    """One point of a search.

    Attributes:
        choice: what was tried, as JSON (setting name -> value).
        score: its held-out :class:`qsnmc.ValidationScore` (None where only ``objective`` is known).
        objective: the number the search maximises (e.g. P minus a count penalty).
        extra: anything else worth recording (JSON).
    """

    choice: dict[str, Any]
    score: ValidationScore | None
    objective: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"choice": self.choice, "objective": _finite(self.objective)}
        if self.score is not None:
            out.update(performance=self.score.performance, count_error=self.score.count_error())
        return {**out, **self.extra}


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def best_candidate(candidates: Sequence[Candidate]) -> Candidate:
    """The candidate of highest objective (the first one on ties; NaN never wins)."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    values = np.array([c.objective if np.isfinite(c.objective) else -np.inf for c in candidates])
    return candidates[int(np.argmax(values))]


def candidates_record(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    """Every candidate as JSON, in search order."""
    return [c.to_dict() for c in candidates]
