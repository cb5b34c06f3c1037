"""qsnmc.testing.check_model: a conforming toy model passes, and each deliberately broken toy fails
the one check it breaks, with a message naming the model and the check."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

import qsnmc
from qsnmc.testing import ConformanceError, check_model, synthetic_challenge


@pytest.fixture(scope="module")
def challenge():
    return synthetic_challenge()


@dataclass(frozen=True)
class ToySettings:
    tau_s: float = qsnmc.setting(0.01, "low-pass time constant of the current (s)", min=1e-4)
    levels: tuple[float, ...] = qsnmc.setting((95.0, 97.0, 99.0), "threshold candidates: percentiles of the "
                                              "filtered current")
    heldout_fraction: float = qsnmc.setting(0.25, "last part of each training window that scores the search",
                                            min=0.05, max=0.5)


def _crossings(stim: qsnmc.Stimulus, tau_s: float, theta_pA: float) -> np.ndarray:
    x = qsnmc.lowpass(stim.current_pA, stim.dt_s, tau_s)
    times = (np.flatnonzero((x[:-1] < theta_pA) & (x[1:] >= theta_pA)) + 1) * stim.dt_s
    return qsnmc.clip_to_window(times, stim.window_s)


class Toy(qsnmc.Model):
    """Threshold crossings of the filtered current; the level chosen on held-out data, then refit."""

    name = "toy"
    Settings = ToySettings
    variant = "refit"

    def _theta(self, train: qsnmc.TrainingData, level: float) -> float:
        x = np.concatenate([qsnmc.lowpass(s.current_pA, s.dt_s, self.settings.tau_s)[s.window_slice]
                            for s in train.stimuli])
        return float(np.percentile(x, level))

    def fit(self, train: qsnmc.TrainingData) -> dict:
        fold = train.time_split(self.settings.heldout_fraction)
        candidates = []
        for level in self.settings.levels:
            theta = self._theta(fold.fit, level)
            predictions = {h.name: _crossings(h.stimulus, self.settings.tau_s, theta) for h in fold.heldout}
            score = qsnmc.score_heldout(predictions, fold.heldout, fold.fit.delta_s)
            candidates.append(qsnmc.Candidate({"level": level}, score, score.performance))
        best = qsnmc.best_candidate(candidates)
        self.theta_pA = self._theta(train, best.choice["level"])
        return qsnmc.fit_record(settings=qsnmc.settings_record(self.settings), fitted={"theta_pA": self.theta_pA},
                                held_out=qsnmc.held_out_record(best.score, fold.label),
                                candidates=qsnmc.candidates_record(candidates))

    def predict(self, stimulus: qsnmc.Stimulus) -> np.ndarray:
        return _crossings(stimulus, self.settings.tau_s, self.theta_pA)


class UnsortedSpikes(Toy):
    name = "toy-unsorted"

    def predict(self, stimulus: qsnmc.Stimulus) -> np.ndarray:
        return super().predict(stimulus)[::-1]


class HeldOutFigureMismatch(Toy):
    name = "toy-held-out"

    def fit(self, train: qsnmc.TrainingData) -> dict:
        record = super().fit(train)
        record["held_out"]["performance"] += 0.1  # not the figure the choice was made on
        return record


class SeedChangesNothing(Toy):
    """Its random numbers come from an unseeded generator: the seed does not govern them."""

    name = "toy-unseeded"

    def fit(self, train: qsnmc.TrainingData) -> dict:
        record = super().fit(train)
        self.jitter_s = float(np.random.default_rng().uniform(0.0, 1e-3))
        return record

    def predict(self, stimulus: qsnmc.Stimulus) -> np.ndarray:
        return qsnmc.clip_to_window(super().predict(stimulus) + self.jitter_s, stimulus.window_s)


@dataclass(frozen=True)
class UndocumentedSettings:
    tau_s: float = 0.01
    levels: tuple[float, ...] = (95.0, 97.0, 99.0)
    heldout_fraction: float = 0.25


class NoSettingsDocs(Toy):
    name = "toy-no-docs"
    Settings = UndocumentedSettings


class NoVariant(Toy):
    name = "toy-no-variant"
    variant = None


def test_a_conforming_model_passes(challenge):
    report = check_model(Toy, challenge=challenge)
    assert report.model == "toy" and report.record["variant"] == "refit"
    assert report.record["held_out"]["performance"] == max(c["performance"] for c in report.record["candidates"])


@pytest.mark.parametrize("broken, check", [
    (UnsortedSpikes, "predictions: stimulus 'A': predicted train 0: spike times not strictly increasing"),
    (HeldOutFigureMismatch, "held-out figure"),
    (SeedChangesNothing, "same seed, same prediction"),
    (NoSettingsDocs, "settings: setting 'tau_s' has no reason"),
    (NoVariant, "fit record: a held-out score but no 'variant'"),
], ids=lambda x: x.name if isinstance(x, type) else "")
def test_a_broken_model_fails_the_check_it_breaks(challenge, broken, check):
    with pytest.raises(ConformanceError, match=f"^{broken.name}: ") as caught:
        check_model(broken, challenge=challenge)
    assert check in str(caught.value)


def test_predicting_before_fitting_is_one_error_naming_the_model(challenge):
    with pytest.raises(qsnmc.NotFittedError, match="'toy'"):
        Toy().predict(challenge.test_stimuli()[0])


def test_a_model_that_skips_the_guard_fails(challenge):
    """A model whose predict works before fit (here: state set in __init__) is refused."""

    class Eager(Toy):
        name = "toy-eager"

        def __init__(self, seed: int = 0, budget: float = 1.0, **overrides) -> None:
            super().__init__(seed, budget, **overrides)
            self._qsnmc_fitted = True  # pretends to be fitted
            self.theta_pA = 0.0

    with pytest.raises(ConformanceError, match="toy-eager: predict before fit: returned a prediction"):
        check_model(Eager, challenge=challenge)


def test_a_settings_round_trip_that_fails_is_reported(challenge):
    """A fit record whose settings are not the ones used."""

    class OtherSettings(Toy):
        name = "toy-settings"

        def fit(self, train):
            record = super().fit(train)
            record["settings"] = qsnmc.settings_record(dataclasses.replace(self.settings, tau_s=0.02))
            return record

    with pytest.raises(ConformanceError, match="toy-settings: fit record: its 'settings' are not the settings used"):
        check_model(OtherSettings, challenge=challenge)
