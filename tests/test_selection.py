"""Nested validation of selection rules: training data only, real gru training on small data."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import qsnmc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the selection study's code
from nested_gru import FoldedGRUModel, ProbedGRUModel  # noqa: E402
from selection_rules import (RULES, ScoredCheckpoint, agreement, nested_split, picked, rank_agreement,  # noqa: E402
                             stimulus_folds, time_folds)
from synthetic import write_synthetic_challenge  # noqa: E402


@pytest.fixture(scope="module")
def challenge(tmp_path_factory):
    folder = write_synthetic_challenge(tmp_path_factory.mktemp("sel") / "c", n_stimuli=2)
    return qsnmc.load_challenge(folder)


@pytest.fixture
def scored_windows(monkeypatch) -> list[tuple[float, float]]:
    """The window (s) of every held-out score a hazard entry computes, recorded as it is scored."""
    seen: list[tuple[float, float]] = []
    real = qsnmc.score_trains

    def spy(name, recorded, predicted, window_s, *args, **kwargs):
        seen.append(tuple(window_s))
        return real(name, recorded, predicted, window_s, *args, **kwargs)

    monkeypatch.setattr("qsnmc_plugins.hazard.heldout.score_trains", spy)
    return seen


def test_a_test_window_is_refused(challenge):
    """Selection code takes TrainingData only: a challenge, a test stimulus or a fold whose
    held-out part could be a test window are refused before anything is split."""
    for wrong in (challenge, challenge.test_stimuli()[0], challenge.test_stimuli(),
                  challenge.training_data().time_split(0.2)):
        with pytest.raises(TypeError, match="TrainingData"):
            nested_split(wrong)
    with pytest.raises(TypeError, match="TrainingData"):
        ProbedGRUModel(challenge, "run")  # the split itself, not something else
    split = nested_split(challenge.training_data(), 0.25)
    for folds in (time_folds, stimulus_folds):
        for wrong in (challenge, split, challenge.test_stimuli(), challenge.training_data().time_split(0.2)):
            with pytest.raises(TypeError, match="TrainingData"):
                folds(wrong, 2)
    with pytest.raises(TypeError, match="Fold of TrainingData"):
        FoldedGRUModel(split.inner)


def test_the_probe_is_the_end_of_each_training_window(challenge):
    train = challenge.training_data()
    split = nested_split(train, 0.25)
    tests = {s.name: s.window_s for s in challenge.test_stimuli()}
    for s, inner, probe in zip(train.stimuli, split.inner.stimuli, split.probe):
        assert inner.window_s[0] == s.window_s[0] and probe.stimulus.window_s[1] == s.window_s[1]
        assert inner.window_s[1] == probe.stimulus.window_s[0] == pytest.approx(10.5)
        assert probe.stimulus.window_s[1] <= tests[s.name][0]  # never the test window
        assert all(t.size and t.min() >= 10.5 and t.max() < 14.0 for t in probe.spike_times_s)
        assert all(t.size == 0 or t.max() < 10.5 for t in inner.spike_times_s)  # the fit never sees the probe


def test_rank_agreement_and_rules_on_hand_made_candidates():
    assert rank_agreement([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_agreement([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(rank_agreement([1, 2], [1, 2]))  # too few pairs
    assert math.isnan(rank_agreement([1, 1, 1], [1, 2, 3]))  # a constant rule ranks nothing
    assert rank_agreement([1, np.nan, 2, 3], [1, 5, 2, 3]) == pytest.approx(1.0)  # NaN pairs left out
    # run a: both rules rank its checkpoints as the probe does; run b: both the reverse
    cands = [ScoredCheckpoint("a", 10, 0.5, 0.30, 0.50, 0.3), ScoredCheckpoint("a", 20, 0.6, 0.20, 0.60, 0.3),
             ScoredCheckpoint("a", 30, 0.7, 0.10, 0.70, 0.3),
             ScoredCheckpoint("b", 10, 0.9, 0.10, 0.40, 0.3), ScoredCheckpoint("b", 20, 0.8, 0.20, 0.50, 0.3),
             ScoredCheckpoint("b", 30, 0.7, 0.30, 0.55, 0.3)]
    p, ce, last = (agreement(cands, r) for r in ("held-out P", "held-out cross-entropy", "last checkpoint"))
    assert p["checkpoints"] == pytest.approx(0.0) and ce["checkpoints"] == pytest.approx(0.0)
    assert p["pooled"] == pytest.approx(rank_agreement([c.held_out_p for c in cands], [c.probe_p for c in cands]))
    assert p["runs"] is not None and math.isnan(p["runs"])  # two runs: too few to rank
    assert picked(cands[:3], "held-out P").step == 30 and picked(cands[3:], "held-out P").step == 10
    assert p["kept_probe_p"] == pytest.approx((0.70 + 0.40) / 2) and p["regret"] == pytest.approx(0.15 / 2)
    assert last["kept_probe_p"] == pytest.approx((0.70 + 0.55) / 2) and last["regret"] == 0.0
    assert math.isnan(last["runs"])  # every run's last step is alike: no ranking of runs
    assert p["n_runs"] == 2 and p["n_candidates"] == 6 and set(RULES) >= {"held-out P", "last checkpoint"}


def test_probed_gru_scores_every_checkpoint_on_the_probe_only(challenge, scored_windows):
    """A real (small) gru fit on the inner part: one candidate per evaluation of its weight average,
    held-out scores as the entry's own curve, probe scores from the probe's spikes alone."""
    split = nested_split(challenge.training_data(), 0.25)
    model = ProbedGRUModel(split, "small", seed=0, budget=0.03, hidden=8, members=1, steps=800, seq_bins=400,
                           burn_bins=100, predict_burn_bins=100)  # 24 steps, evaluated every 5 (the fewest steps apart)
    record = model.fit()
    assert [c.step for c in model.checkpoints] == [5, 10, 15, 20, 24]
    assert [c.held_out_p for c in model.checkpoints] == record["curves"]["member 0 held-out P"]["y"]
    assert all(math.isfinite(c.probe_p) and c.probe_bce > 0 for c in model.checkpoints)
    assert {w for w in scored_windows if w[0] >= 10.5} == {(10.5, 14.0)}  # the probe: scored, never beyond it
    assert max(w[1] for w in scored_windows) <= 14.0  # no window of the test part (14-20 s) was scored
    with pytest.raises(ValueError, match="inner part"):
        model.fit(challenge.training_data())


def test_time_folds_tile_the_inner_windows_and_stop_before_the_probe(challenge):
    """Fold j holds out the j-th third of every inner window and fits on the rest (before and
    after it as two sequences); the blocks tile the window; nothing reaches the probe (10.5 s on)."""
    inner = nested_split(challenge.training_data(), 0.25).inner
    folds = time_folds(inner, 3)
    for s in inner.stimuli:
        blocks = [next(h for h in f.heldout if h.name == s.name).stimulus.window_s for f in folds]
        assert blocks[0][0] == s.window_s[0] and blocks[-1][1] == s.window_s[1] == pytest.approx(10.5)
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))  # contiguous, no gap, no overlap
        for f, (lo, hi) in zip(folds, blocks):
            parts = [q for q in f.fit.stimuli if q.name.split(":")[0] == s.name]
            assert sorted(q.window_s for q in parts) == [w for w in [(s.window_s[0], lo), (hi, s.window_s[1])]
                                                          if w[1] > w[0]]
            for q in parts:
                assert q.voltage_mV.shape[1] == pytest.approx((q.window_s[1] - q.window_s[0]) / q.dt_s, abs=1)
                assert all(t.size == 0 or (t.min() >= q.window_s[0] and t.max() < q.window_s[1])
                           for t in q.spike_times_s)
            held = next(h for h in f.heldout if h.name == s.name)
            assert all(t.size == 0 or (t.min() >= lo and t.max() < hi) for t in held.spike_times_s)
            assert sum(t.size for t in held.spike_times_s) + sum(t.size for q in parts for t in q.spike_times_s) == \
                sum(t.size for t in s.spike_times_s)  # every inner spike in exactly one place
    with pytest.raises(ValueError, match="k >= 2"):
        time_folds(inner, 1)


def test_stimulus_folds_hold_whole_stimuli_out(challenge):
    inner = nested_split(challenge.training_data(), 0.25).inner
    names = [s.name for s in inner.stimuli]
    folds = stimulus_folds(inner, 2)
    assert [[h.name for h in f.heldout] for f in folds] == [[n] for n in names]
    for f in folds:
        assert [q.name for q in f.fit.stimuli] == [n for n in names if n != f.heldout[0].name]
        assert f.heldout[0].stimulus.window_s == inner.stimulus(f.heldout[0].name).window_s  # whole, inner only
    with pytest.raises(ValueError, match="2 <= k <= 2"):
        stimulus_folds(inner, 3)


def test_folded_gru_trains_on_the_fold_and_scores_its_block_only(challenge, scored_windows):
    """A real (small) gru on the middle time fold: every held-out score is of that fold's block."""
    fold = time_folds(nested_split(challenge.training_data(), 0.25).inner, 3)[1]
    model = FoldedGRUModel(fold, seed=0, budget=0.02, hidden=8, seq_bins=300, burn_bins=100, predict_burn_bins=100)
    record = model.fit()
    assert set(scored_windows) == {h.stimulus.window_s for h in fold.heldout} == {(3.5, 7.0)}
    assert math.isfinite(record["held_out"]["performance"]) and record["held_out"]["split"] == fold.label
    with pytest.raises(ValueError, match="fit part"):
        model.fit(challenge.training_data())
