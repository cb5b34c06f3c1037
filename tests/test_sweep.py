"""qsnmc sweep: a param_grid scored on held-out training data (time split or left-out stimuli), never the test window."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import PROJECT, run_cli
from qsnmc import load_challenge
from qsnmc.harness.sweep import grid_points, heldout_challenge, heldout_challenges

PROBE = '''
import numpy as np
import qsnmc

class Probe(qsnmc.Model):
    """Fires at a fixed lag after each recorded training spike pattern; records what it saw."""
    name = "probe"
    param_grid = {"lag_ms": [0.0, 50.0], "keep": [1, 2]}

    def __init__(self, seed=0, budget=1.0, lag_ms=0.0, keep=1):
        super().__init__(seed, budget)
        self.lag_s, self.keep = lag_ms / 1e3, keep

    def fit(self, train):
        self.spikes = train.spike_times_s[0]
        last = max(float(t.max()) for t in train.spike_times_s)
        return {"train_window_s": list(train.window_s), "last_train_spike_s": last,
                "voltage_samples": int(train.voltage_mV.shape[1]), "lag_ms": 1e3 * self.lag_s, "keep": self.keep}

    def predict(self, stimulus):
        # a deliberately poor but honest guess: the training spike times, shifted into the window
        start, stop = stimulus.window_s
        t = np.unique(np.round(self.spikes[:: self.keep] % (stop - start) + start + self.lag_s, 4))
        return t[(t >= start) & (t <= stop)]

@qsnmc.hookimpl
def qsnmc_register_models():
    return [Probe]
'''


def test_heldout_challenge_is_made_of_training_data_only(data_dir):
    full = load_challenge(data_dir / "challenges" / "synthetic-test")
    held = heldout_challenge(full, 0.25)
    (s,), (orig,) = held.stimuli, full.stimuli
    assert s.train_window_s == (0.0, 10.5) and s.test_window_s == (10.5, 14.0)
    assert s.train_voltage_mV.shape[1] == round(10.5 / s.dt_s)
    assert np.array_equal(s.train_voltage_mV, orig.train_voltage_mV[:, : s.train_voltage_mV.shape[1]])
    for held_test, train in zip(s.test_spikes_s, orig.train_spikes_s):
        assert np.array_equal(held_test, train[train >= 10.5])  # the "hidden" part is training data
        assert held_test.max() < 14.0  # nothing from the real test window
    assert 0 < held.reliability("A") <= 1
    assert held.fingerprint() != full.fingerprint()
    with pytest.raises(ValueError):
        heldout_challenge(full, 1.0)


def test_grid_points_cover_every_combination():
    assert grid_points({"b": [1, 2], "a": ["x"]}) == [{"a": "x", "b": 1}, {"a": "x", "b": 2}]


@pytest.mark.slow
def test_sweep_scores_each_setting_on_the_held_out_part_and_keeps_the_best(tmp_path, data_dir):
    (tmp_path / "submissions").mkdir()
    (tmp_path / "submissions" / "probe.py").write_text(PROBE)
    proc = run_cli(["sweep", "probe", "--challenge", "synthetic-test", "--jobs", "2", "--holdout", "0.25"],
                   cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "never the test window" in proc.stdout and "Best:" in proc.stdout and "--param" in proc.stdout
    run_dir = tmp_path / "runs" / (tmp_path / "runs" / "LATEST").read_text().strip()
    sweep = json.loads((run_dir / "sweep.json").read_text())
    assert len(sweep["settings"]) == 4 and all(s["status"] == "ok" for s in sweep["settings"])
    assert sweep["best"]["performance"] == max(s["performance"] for s in sweep["settings"])
    for s in sweep["settings"]:
        rec = json.loads((run_dir / s["label"] / "record.json").read_text())
        fit = rec["fit_record"]
        assert fit["train_window_s"] == [0.0, 10.5] and fit["last_train_spike_s"] < 10.5  # fitted on the first part
        assert (fit["lag_ms"], fit["keep"]) == (s["params"]["lag_ms"], s["params"]["keep"])  # settings reached it
        assert rec["base_model"] == "probe"
    assert json.loads((run_dir / "run.json").read_text())["sweep"]["holdout"] == 0.25
    # the best setting can then be scored on the test window
    lag, keep = sweep["best"]["params"]["lag_ms"], sweep["best"]["params"]["keep"]
    proc = run_cli(["run", "probe", "--param", f"lag_ms={lag}", "--param", f"keep={keep}", "--challenge",
                    "synthetic-test", "--json", "rows.json", "--quiet"], cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    row = json.loads((tmp_path / "rows.json").read_text())[0]
    assert row["status"] == "ok"


def test_sweep_of_a_model_without_grid_is_a_clear_error(tmp_path, data_dir):
    (tmp_path / "submissions").mkdir()
    proc = run_cli(["sweep", "poisson", "--challenge", "synthetic-test"], cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 2 and "exposes no param_grid" in proc.stderr


def test_stimulus_split_leaves_each_stimulus_out_in_turn(data_dir):
    full = load_challenge(data_dir / "challenges" / "synthetic-two")
    helds = heldout_challenges(full, "stimulus")
    assert [[s.name for s in h.stimuli if s.test_window_s] for h in helds] == [["A"], ["B"]]
    for held in helds:
        (test,) = [s for s in held.stimuli if s.test_window_s]
        (train,) = [s for s in held.stimuli if s.train_window_s]
        assert test.train_window_s is None and train.test_window_s is None  # never fitted on what it scores
        orig = next(s for s in full.stimuli if s.name == test.name)
        assert test.test_window_s == orig.train_window_s  # the whole training recording, not the test window
        for a, b in zip(test.test_spikes_s, orig.train_spikes_s):
            assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="at least 2"):
        heldout_challenges(load_challenge(data_dir / "challenges" / "synthetic-test"), "stimulus")
    with pytest.raises(ValueError, match="R >= 2"):
        heldout_challenges(full, "time", r_floor=2.0)


@pytest.mark.slow
def test_sweep_with_left_out_stimuli_combines_the_folds(tmp_path, data_dir):
    proc = run_cli(["sweep", "example-threshold", "--split", "stimulus", "--challenge", "synthetic-two", "--jobs", "2",
                    "--quiet", "--submissions", str(PROJECT / "submissions")], cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "left out in turn" in proc.stdout and "Best:" in proc.stdout
    run_dir = tmp_path / "runs" / (tmp_path / "runs" / "LATEST").read_text().strip()
    sweep = json.loads((run_dir / "sweep.json").read_text())
    assert sweep["split"] == "stimulus" and len(sweep["folds"]) == 2 and len(sweep["settings"]) == 3
    fold_dirs = sorted(p.parent for p in (run_dir / "folds").glob("*/run.json"))
    assert len(fold_dirs) == 2
    for s in sweep["settings"]:
        recs = [json.loads((d / s["label"] / "record.json").read_text()) for d in fold_dirs]
        held = [r["scores"][0] for r in recs]
        assert [h["stimulus"] for h in held] == ["A", "B"]
        per_stimulus = [np.mean(h["gammas"]) / h["reliability"] for h in held]
        assert s["performance"] == pytest.approx(np.mean(per_stimulus))  # stimuli weigh equally
    assert sweep["best"]["performance"] == max(s["performance"] for s in sweep["settings"])
