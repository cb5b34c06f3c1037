"""Score a model's predictions on a challenge's hidden test (scoring process only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from qsnmc.challenges.store import Challenge
from qsnmc.scoring.metrics import (
    InvalidPrediction,
    StimulusScore,
    as_prediction_list,
    bootstrap_error,
    performance,
    score_stimulus,
)

#: a prediction above this rate (Hz) is refused as absurd
MAX_RATE_HZ = 500.0


@dataclass
class ModelScore:
    """A model's score on a challenge: P = mean Gamma/R and its bootstrap error."""

    stimuli: list[StimulusScore] = field(default_factory=list)

    @property
    def gamma(self) -> float:
        """Mean raw Gamma over stimuli (each stimulus' mean over repetitions)."""
        return float(np.mean([s.gammas.mean() for s in self.stimuli]))

    @property
    def performance(self) -> float:
        """P: mean of Gamma_i / R (stimuli weighted equally)."""
        return performance([s.normalised for s in self.stimuli])

    @property
    def error(self) -> float:
        """Bootstrap error of P (10,000 resamples, seed 0)."""
        return bootstrap_error([s.normalised for s in self.stimuli])

    def to_dict(self) -> dict:
        return {
            "gamma": self.gamma,
            "performance": self.performance,
            "error": self.error,
            "stimuli": [
                {"stimulus": s.stimulus, "reliability": s.reliability, "gammas": s.gammas.tolist(),
                 "n_predicted": s.n_predicted, "n_recorded": s.n_recorded}
                for s in self.stimuli
            ],
        }


def validate_prediction(
    prediction: np.ndarray | Sequence[np.ndarray], window_s: tuple[float, float], n_repetitions: int
) -> list[np.ndarray]:
    """Check a model's output for one stimulus; return one float64 train per repetition.

    Raises:
        InvalidPrediction: wrong number of trains, non-finite or unsorted times, times
            outside the window, or a rate above :data:`MAX_RATE_HZ`.
    """
    try:
        trains = as_prediction_list(prediction, n_repetitions)
    except (TypeError, ValueError) as exc:
        raise InvalidPrediction(f"prediction is not spike times: {exc}") from exc
    start, stop = window_s
    for i, t in enumerate(trains):
        if not np.all(np.isfinite(t)):
            raise InvalidPrediction(f"predicted train {i}: spike times not finite (NaN or inf)")
        if t.size > 1 and np.any(np.diff(t) <= 0):
            raise InvalidPrediction(f"predicted train {i}: spike times not strictly increasing")
        if t.size and (t[0] < start or t[-1] > stop):
            raise InvalidPrediction(
                f"predicted train {i}: spike times {t[0]:.4f}-{t[-1]:.4f} s outside the window {start:g}-{stop:g} s"
            )
        rate = t.size / (stop - start)
        if rate > MAX_RATE_HZ:
            raise InvalidPrediction(f"predicted train {i}: rate {rate:.0f} Hz above {MAX_RATE_HZ:.0f} Hz")
    return trains


def score_predictions(challenge: Challenge, predictions: Mapping[str, np.ndarray | Sequence[np.ndarray]]) -> ModelScore:
    """Score predictions ``{stimulus name: trains}`` against the hidden test recordings.

    Raises:
        InvalidPrediction: a stimulus is missing or a prediction fails validation.
    """
    result = ModelScore()
    for stim in challenge.test_stimuli():
        if stim.name not in predictions:
            raise InvalidPrediction(f"no prediction for stimulus {stim.name!r}")
        trains = validate_prediction(predictions[stim.name], stim.window_s, stim.n_repetitions)
        result.stimuli.append(
            score_stimulus(
                stim.name,
                challenge.test_recordings(stim.name),
                trains,
                challenge.reliability(stim.name),
                challenge.delta_s,
                duration=stim.duration_s,
            )
        )
    return result


@dataclass
class InProcessEvaluation:
    """What :func:`evaluate_in_process` measured: the fit record, predictions, score and timings (s)."""

    record: dict
    predictions: dict
    score: ModelScore
    fit_s: float
    fit_cpu_s: float
    predict_s: float
    predict_cpu_s: float


def evaluate_in_process(model, challenge: Challenge) -> InProcessEvaluation:
    """Fit ``model`` on the challenge's training data, predict every test stimulus, score.

    Runs in this process, unsandboxed: for a plugin's own tests and benchmarks, which
    measure a model directly. ``qsnmc run`` instead isolates each model in a worker.
    """
    import time

    w0, c0 = time.perf_counter(), time.process_time()
    record = model.fit(challenge.training_data()) or {}
    fit_s, fit_cpu_s = time.perf_counter() - w0, time.process_time() - c0
    w0, c0 = time.perf_counter(), time.process_time()
    predictions = {s.name: model.predict(s) for s in challenge.test_stimuli()}
    predict_s, predict_cpu_s = time.perf_counter() - w0, time.process_time() - c0
    return InProcessEvaluation(record, predictions, score_predictions(challenge, predictions), fit_s, fit_cpu_s,
                               predict_s, predict_cpu_s)
