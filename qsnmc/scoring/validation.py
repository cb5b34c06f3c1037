"""Scoring a candidate on held-out training data the competition's way (for model selection).

A plugin chooses its structure, hyper-parameters, restarts or checkpoints on folds of
its training data (:meth:`qsnmc.TrainingData.time_split`,
:meth:`qsnmc.TrainingData.stimulus_folds`), never on the test window. This module
scores the predictions on those folds with the official Gamma, normalised per stimulus
by the held-out recordings' own intrinsic reliability R, stimuli weighted equally:

- a stimulus whose held-out R is below ``r_floor`` (it barely repeats, or has a single
  repetition) is left out of P, as the 2007 import leaves such stimuli out of its test;
- if no stimulus reaches the floor, P falls back to the mean raw Gamma (and says so:
  :attr:`ValidationScore.normalised` is False). This is what every built-in optimises on
  a challenge whose training stimulus was recorded once (the GIF protocol: one 60 s
  training sweep, the repetitions only in the test): R is undefined there, so P is the
  held-out Gamma of the prediction against the one recording, on the held-out part of the
  training sweep only, never the test. It ranks candidates as Gamma/R would (R is one
  constant of the recording) but its scale is Gamma's, about R times lower than a Gamma/R;
- an invalid prediction (a rate at which Gamma is undefined, a wrong number of trains,
  non-finite times) scores :data:`INVALID_GAMMA`, worse than chance; P is never NaN;
- each stimulus also reports predicted and recorded spike counts, so an objective can
  penalise a model that fires at the wrong rate (:attr:`ValidationScore.log_count_error`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from qsnmc.data import Fold, HeldOutStimulus
from qsnmc.scoring.metrics import InvalidPrediction, as_prediction_list, coincidence_factor, intrinsic_reliability

#: what a repetition scores when the prediction is invalid (Gamma itself is >= -1 for valid ones near chance)
INVALID_GAMMA = -1.0
#: default reliability floor: held-out stimuli whose R is below it do not enter P
R_FLOOR = 0.3


@dataclass(frozen=True)
class HeldOutScore:
    """One held-out stimulus' score.

    Attributes:
        stimulus: its name.
        gammas: Gamma_i of prediction i against recording i.
        reliability: R of the held-out recordings (NaN with fewer than 2 repetitions).
        n_predicted: mean number of predicted spikes per train.
        n_recorded: mean number of recorded spikes per repetition.
        included: whether this stimulus enters P (R at or above the floor).
        error: why the prediction was invalid, else ``""``.
    """

    stimulus: str
    gammas: np.ndarray
    reliability: float
    n_predicted: float
    n_recorded: float
    included: bool
    error: str = ""

    @property
    def gamma(self) -> float:
        return float(np.mean(self.gammas))

    @property
    def normalised(self) -> float:
        """Mean Gamma / R (NaN when R is undefined or not positive; such stimuli are never included)."""
        r = self.reliability
        return float(self.gamma / r) if np.isfinite(r) and r > 0 else float("nan")

    @property
    def count_ratio(self) -> float:
        """Predicted / recorded spike count (1 when both are 0, inf when only the recording is silent)."""
        if self.n_recorded == 0:
            return 1.0 if self.n_predicted == 0 else float("inf")
        return self.n_predicted / self.n_recorded

    def to_dict(self) -> dict[str, Any]:
        return {
            "stimulus": self.stimulus, "gamma": self.gamma, "reliability": _finite_or_none(self.reliability),
            "gamma_over_r": _finite_or_none(self.normalised), "n_predicted": self.n_predicted,
            "n_recorded": self.n_recorded, "included": self.included, "error": self.error,
        }


@dataclass(frozen=True)
class ValidationScore:
    """A candidate's score over held-out stimuli (one fold, or several merged)."""

    stimuli: tuple[HeldOutScore, ...]
    r_floor: float = R_FLOOR

    @property
    def normalised(self) -> bool:
        """True when P is a mean of Gamma/R; False when no stimulus reached the floor (raw Gamma)."""
        return any(s.included for s in self.stimuli)

    @property
    def performance(self) -> float:
        """P: mean Gamma/R over included stimuli (equal weights), else mean raw Gamma. Never NaN."""
        used = [s.normalised for s in self.stimuli if s.included]
        if used:
            return float(np.mean(used))
        return float(np.mean([s.gamma for s in self.stimuli])) if self.stimuli else 0.0

    @property
    def log_count_error(self) -> float:
        """Mean over included stimuli (all, if none is) of |ln((n_pred + 1) / (n_rec + 1))|: 0 for the right counts."""
        return self.count_error()

    def count_error(self, every_stimulus: bool = False) -> float:
        """Mean |ln((n_pred + 1) / (n_rec + 1))| over included stimuli (all, if none is), or over
        every stimulus with ``every_stimulus`` (a count is meaningful even where R is too low for Gamma/R)."""
        used = list(self.stimuli) if every_stimulus else ([s for s in self.stimuli if s.included] or list(self.stimuli))
        if not used:
            return 0.0
        return float(np.mean([abs(np.log((s.n_predicted + 1.0) / (s.n_recorded + 1.0))) for s in used]))

    def per_stimulus(self) -> dict[str, dict[str, Any]]:
        """The fit-record view: per stimulus name, Gamma/R (None where R is undefined), Gamma, R,
        predicted and recorded spike counts and their ratio, and whether it enters P."""
        return {s.stimulus: {"gamma_over_r": _finite_or_none(s.normalised), "gamma": s.gamma,
                             "reliability": _finite_or_none(s.reliability), "n_predicted": s.n_predicted,
                             "n_recorded": s.n_recorded, "count_ratio": _finite_or_none(s.count_ratio),
                             "included": s.included} for s in self.stimuli}

    def merged(self, other: "ValidationScore") -> "ValidationScore":
        """The stimuli of both scores together (e.g. every leave-one-stimulus-out fold)."""
        return ValidationScore(self.stimuli + other.stimuli, self.r_floor)

    def to_dict(self) -> dict[str, Any]:
        return {"performance": self.performance, "normalised": self.normalised, "r_floor": self.r_floor,
                "log_count_error": self.log_count_error, "stimuli": [s.to_dict() for s in self.stimuli]}


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def heldout_reliability(held: HeldOutStimulus, delta_s: float) -> float:
    """R of a held-out stimulus' recordings in its window (NaN with fewer than 2 repetitions)."""
    if len(held.spike_times_s) < 2:
        return float("nan")
    return intrinsic_reliability(held.spike_times_s, delta_s, duration=held.stimulus.duration_s)


def score_heldout_stimulus(
    held: HeldOutStimulus,
    prediction: np.ndarray | Sequence[np.ndarray],
    delta_s: float,
    *,
    r_floor: float = R_FLOOR,
    reliability: float | None = None,
) -> HeldOutScore:
    """Score one prediction (one train, or one per repetition; spike times in s) on one held-out stimulus.

    ``reliability`` may be passed when already known (it depends on the recordings only).
    """
    r = heldout_reliability(held, delta_s) if reliability is None else reliability
    return score_trains(held.name, held.spike_times_s, prediction, held.stimulus.window_s, delta_s,
                        r_floor=r_floor, reliability=r)


def score_trains(
    name: str,
    recordings: Sequence[np.ndarray],
    prediction: np.ndarray | Sequence[np.ndarray],
    window_s: tuple[float, float],
    delta_s: float,
    *,
    r_floor: float = R_FLOOR,
    reliability: float | None = None,
) -> HeldOutScore:
    """Score a prediction against recorded trains of one held-out stretch ``window_s`` (s).

    For a plugin that holds out its own stretches (e.g. a free run from a recorded state);
    combine several with :class:`ValidationScore`. Spikes outside the window are ignored.
    """
    n = len(recordings)
    lo, hi = window_s
    duration = hi - lo
    recordings = [np.asarray(t, dtype=np.float64) for t in recordings]
    if reliability is None:
        reliability = intrinsic_reliability(recordings, delta_s, duration=duration) if n >= 2 else float("nan")
    r = float(reliability)
    included = bool(np.isfinite(r) and r >= r_floor and r > 0)
    n_recorded = float(np.mean([t.size for t in recordings]))
    try:
        trains = as_prediction_list(prediction, n)
        for t in trains:
            if not np.all(np.isfinite(t)):
                raise InvalidPrediction("non-finite spike times")
        trains = [t[(t >= lo) & (t <= hi)] for t in trains]  # the window is closed, as the harness checks it
        gammas = np.array([coincidence_factor(rec, p, delta_s, duration=duration) for rec, p in zip(recordings, trains)])
        return HeldOutScore(name, gammas, r, float(np.mean([t.size for t in trains])), n_recorded, included)
    except InvalidPrediction as exc:
        return HeldOutScore(name, np.full(n, INVALID_GAMMA), r, _mean_count(prediction), n_recorded, included,
                            str(exc))


def _mean_count(prediction: Any) -> float:
    """Mean spike count of a prediction that may be malformed (for the record only)."""
    try:
        if isinstance(prediction, np.ndarray) and prediction.dtype != object:
            return float(prediction.size)
        sizes = [np.size(p) for p in prediction]
        return float(np.mean(sizes)) if sizes else 0.0
    except TypeError:
        return 0.0


def score_heldout(
    predictions: Mapping[str, np.ndarray | Sequence[np.ndarray]],
    heldout: Sequence[HeldOutStimulus],
    delta_s: float,
    *,
    r_floor: float = R_FLOOR,
) -> ValidationScore:
    """Score predictions ``{stimulus name: spike times (s)}`` on held-out stimuli.

    A held-out stimulus with no prediction scores as an empty prediction (Gamma 0).

    Args:
        predictions: per held-out stimulus, one train or one per repetition (s, absolute time).
        heldout: the fold's held-out stimuli (:attr:`qsnmc.Fold.heldout`).
        delta_s: the coincidence window (s), usually ``train.delta_s``.
        r_floor: held-out stimuli with R below it do not enter P.
    """
    return ValidationScore(tuple(
        score_heldout_stimulus(h, predictions.get(h.name, np.empty(0)), delta_s, r_floor=r_floor) for h in heldout
    ), r_floor)


def validate_model(model: Any, fold: Fold, *, r_floor: float = R_FLOOR) -> ValidationScore:
    """Fit ``model`` on ``fold.fit``, predict every held-out stimulus, and score.

    ``model`` is any object with ``fit(train)`` and ``predict(stimulus)`` (a fresh one per
    fold: fitting changes it).
    """
    model.fit(fold.fit)
    predictions = {h.name: model.predict(h.stimulus) for h in fold.heldout}
    return score_heldout(predictions, fold.heldout, fold.fit.delta_s, r_floor=r_floor)
