"""The core's validation API: time splits and leave-one-stimulus-out folds of the training
data, and the competition-style score of held-out predictions (never NaN, stimuli equal)."""
from __future__ import annotations

import numpy as np
import pytest

import qsnmc
from qsnmc import TrainingData, TrainingStimulus

DT_S = 0.001


def _stimulus(name: str, n_reps: int, rate_hz: float, jitter_s: float, seed: int, window=(0.0, 10.0)) -> TrainingStimulus:
    """Repetitions of one Poisson train, each spike jittered by ``jitter_s`` (reliable when small)."""
    rng = np.random.default_rng(seed)
    lo, hi = window
    base = np.sort(rng.uniform(lo + 0.01, hi - 0.01, int(rate_hz * (hi - lo))))
    base = base[np.concatenate([[True], np.diff(base) > 0.01])]
    trains = tuple(np.sort(np.clip(base + rng.normal(0, jitter_s, base.size), lo, hi - DT_S)) for _ in range(n_reps))
    n_total = int(round(12.0 / DT_S))
    n_win = int(round((hi - lo) / DT_S))
    return TrainingStimulus(name, DT_S, rng.normal(0, 1, n_total), window, rng.normal(-65, 1, (n_reps, n_win)), trains)


def _training(*stimuli: TrainingStimulus) -> TrainingData:
    return TrainingData("validation-test", stimuli, delta_s=0.004)


def test_time_split_cuts_each_stimulus_and_keeps_the_rest_for_scoring():
    train = _training(_stimulus("a", 3, 10, 0.001, 0), _stimulus("b", 3, 5, 0.001, 1, window=(1.0, 9.0)))
    fold = train.time_split(0.25)
    for fit, held, orig in zip(fold.fit.stimuli, fold.heldout, train.stimuli):
        lo, hi = orig.window_s
        cut = lo + 0.75 * (hi - lo)
        assert fit.window_s == pytest.approx((lo, cut)) and held.stimulus.window_s == pytest.approx((cut, hi))
        assert fit.voltage_mV.shape[1] + held.voltage_mV.shape[1] == orig.voltage_mV.shape[1]
        for f, h, o in zip(fit.spike_times_s, held.spike_times_s, orig.spike_times_s):
            assert np.all(f < cut) and np.all(h >= cut)
            np.testing.assert_array_equal(np.concatenate([f, h]), o)
        assert held.name == orig.name  # the same protocol: a model may warm up on the fitted part


def test_stimulus_folds_are_disjoint_and_cover_every_stimulus():
    stims = [_stimulus(n, 2, 5, 0.001, i) for i, n in enumerate("abcd")]
    folds = _training(*stims).stimulus_folds()
    assert [f.heldout[0].name for f in folds] == list("abcd")
    for f in folds:
        fitted = {s.name for s in f.fit.stimuli}
        assert len(f.heldout) == 1 and f.heldout[0].name not in fitted
        assert fitted | {f.heldout[0].name} == set("abcd")
        assert f.heldout[0].stimulus.window_s == stims["abcd".index(f.heldout[0].name)].window_s


def test_bad_splits_are_clear_errors():
    train = _training(_stimulus("a", 2, 5, 0.001, 0))
    with pytest.raises(ValueError, match="at least 2"):
        train.stimulus_folds()
    with pytest.raises(ValueError, match="between 0 and 1"):
        train.time_split(1.0)
    with pytest.raises(ValueError, match="'time' or 'stimulus'"):
        train.folds("random")


def test_score_weighs_stimuli_equally_and_leaves_out_unreliable_ones():
    reliable_a = _stimulus("a", 4, 20, 0.0005, 0)  # many spikes, R near 1
    reliable_b = _stimulus("b", 4, 2, 0.0005, 1)   # few spikes, R near 1
    unreliable = _stimulus("c", 4, 10, 0.5, 2)      # jitter of 0.5 s: R near 0 or negative
    heldout = _training(reliable_a, reliable_b, unreliable).time_split(0.5).heldout
    perfect = {h.name: h.spike_times_s for h in heldout}
    silent_b = dict(perfect, b=np.empty(0))
    score = qsnmc.score_heldout(silent_b, heldout, 0.004)
    by = {s.stimulus: s for s in score.stimuli}
    assert by["a"].included and by["b"].included and not by["c"].included
    # equal weights: a silent prediction on the sparse stimulus costs half of P, not its spike share
    assert score.performance == pytest.approx(0.5 * by["a"].normalised, rel=1e-12)
    assert by["b"].count_ratio == 0.0 and score.log_count_error > 0
    assert qsnmc.score_heldout(perfect, heldout, 0.004).log_count_error == pytest.approx(0.0)
    # a silent prediction on the unreliable stimulus: outside P's count error, inside every stimulus'
    silent_c = qsnmc.score_heldout(dict(perfect, c=np.empty(0)), heldout, 0.004)
    assert silent_c.log_count_error == pytest.approx(0.0)
    n_c = {s.stimulus: s for s in silent_c.stimuli}["c"].n_recorded
    assert silent_c.count_error(every_stimulus=True) == pytest.approx(np.log(n_c + 1.0) / 3)
    rows = score.per_stimulus()
    assert list(rows) == ["a", "b", "c"] and rows["b"]["count_ratio"] == 0.0 and rows["b"]["n_predicted"] == 0
    assert rows["a"]["gamma_over_r"] == pytest.approx(by["a"].normalised) and rows["c"]["included"] is False


def test_score_is_never_nan():
    unreliable = _stimulus("c", 4, 10, 0.5, 2)
    single = _stimulus("d", 1, 10, 0.001, 3)
    heldout = _training(unreliable, single).time_split(0.5).heldout
    rel = {h.name: h for h in heldout}
    score = qsnmc.score_heldout({h.name: h.spike_times_s[0] for h in heldout}, heldout, 0.004)
    assert not score.normalised  # no stimulus reaches the floor: raw Gamma
    assert np.isfinite(score.performance) and np.isfinite(score.log_count_error)
    assert np.isnan(score.stimuli[1].reliability)  # one repetition: R undefined, reported as such
    # invalid predictions: a rate where Gamma is undefined, or the wrong number of trains
    lo, hi = rel["c"].stimulus.window_s
    too_fast = np.arange(lo, hi, 0.001)
    bad = qsnmc.score_heldout({"c": too_fast, "d": [np.empty(0)] * 3}, heldout, 0.004)
    assert all(s.error for s in bad.stimuli) and bad.performance == qsnmc.scoring.validation.INVALID_GAMMA
    assert np.isfinite(bad.log_count_error)


def test_one_repetition_scores_gamma_against_the_one_recording():
    """The GIF protocol's training sweep, recorded once: held-out P is the raw Gamma against that recording."""
    (held,) = _training(_stimulus("train", 1, 10, 0.001, 5)).time_split(0.25).heldout
    lo, hi = held.stimulus.window_s
    recorded = held.spike_times_s[0]
    rng = np.random.default_rng(0)
    close = np.sort(recorded + rng.normal(0, 0.001, recorded.size))
    far = np.sort(rng.uniform(lo, hi, recorded.size))
    scores = {name: qsnmc.score_heldout({"train": p}, [held], 0.004) for name, p in (("close", close), ("far", far))}
    for name, prediction in (("close", close), ("far", far)):
        score = scores[name]
        assert not score.normalised and score.stimuli[0].included is False and np.isnan(score.stimuli[0].reliability)
        assert score.performance == pytest.approx(
            qsnmc.coincidence_factor(recorded, prediction, 0.004, duration=hi - lo))
    assert scores["close"].performance > 0.5 > scores["far"].performance


def test_validate_model_fits_on_the_fold_and_predicts_only_held_out_windows():
    class Replay(qsnmc.Model):
        """Predicts the first recorded train of a stimulus it was trained on, shifted past the fit window."""
        name = "replay"

        def fit(self, train):
            self.seen = {s.name for s in train.stimuli}

        def predict(self, stimulus):
            assert stimulus.name not in self.seen or stimulus.window_s[0] > 0
            return np.array([stimulus.window_s[0] + 0.5])

    train = _training(*[_stimulus(n, 3, 5, 0.001, i) for i, n in enumerate("ab")])
    scores = [qsnmc.validate_model(Replay(), f) for f in train.stimulus_folds()]
    merged = scores[0].merged(scores[1])
    assert [s.stimulus for s in merged.stimuli] == ["a", "b"]
    assert all(s.n_predicted == 1 for s in merged.stimuli) and np.isfinite(merged.performance)
