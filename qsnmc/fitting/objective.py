"""The objective a fit maximises on training or held-out data: Gamma/R minus a named count penalty.

A spike-count penalty keeps a fit from buying Gamma/R on one stimulus by firing far too
often (or too rarely) on another. Its error is ``|ln((n_pred + 1) / (n_rec + 1))|`` per
stimulus, averaged over one of two named sets of stimuli:

- ``"included"``: the stimuli that enter P (held-out R at or above the floor; all of them if none does);
- ``"every"``: every stimulus, since a count is meaningful even where R is too low for Gamma/R.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qsnmc.scoring.validation import ValidationScore

CountStimuli = Literal["included", "every"]


@dataclass(frozen=True)
class CountPenalty:
    """``weight`` times the mean |log count ratio| over ``stimuli`` ("included" or "every")."""

    weight: float = 0.0
    stimuli: CountStimuli = "included"

    def __post_init__(self) -> None:
        if self.stimuli not in ("included", "every"):
            raise ValueError(f"count penalty stimuli must be 'included' or 'every', got {self.stimuli!r}")

    def error(self, score: ValidationScore) -> float:
        """The mean |log count ratio| this penalty weighs (dimensionless)."""
        return score.count_error(every_stimulus=self.stimuli == "every")

    def objective(self, score: ValidationScore) -> float:
        """P (mean Gamma/R) minus ``weight`` times :meth:`error`."""
        return score.performance - self.weight * self.error(score)
