"""The run command end to end: cache, seeds, JSON rows, clear errors, the unsandboxed path."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import read_rows, run_cli
from qsnmc.challenges.store import ChallengeError, load_challenge


@pytest.fixture()
def work(tmp_path):
    (tmp_path / "submissions").mkdir()
    return tmp_path


def _latest(work):
    return work / "runs" / (work / "runs" / "LATEST").read_text().strip()


def test_cache_reuses_unchanged_models_and_no_cache_refits(work, data_dir):
    args = ["run", "poisson", "lif", "--challenge", "synthetic-test", "--json", "rows.json"]
    first = run_cli(args, cwd=work, data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    rows1 = read_rows(work / "rows.json")
    assert not rows1["lif"]["cached"]
    second = run_cli(args, cwd=work, data_dir=data_dir)
    rows2 = read_rows(work / "rows.json")
    assert rows2["lif"]["cached"] and rows2["lif"]["performance"] == rows1["lif"]["performance"]
    assert "cached" in second.stdout
    third = run_cli(args + ["--no-cache"], cwd=work, data_dir=data_dir)
    assert third.returncode == 0
    assert not read_rows(work / "rows.json")["lif"]["cached"]


def test_seed_makes_stochastic_models_reproducible(work, data_dir):
    perf = {}
    for seed in ("1", "1", "2"):
        proc = run_cli(["run", "poisson", "--challenge", "synthetic-test", "--seed", seed, "--no-cache",
                        "--json", "rows.json"], cwd=work, data_dir=data_dir)
        assert proc.returncode == 0, proc.stderr
        with np.load(_latest(work) / "poisson" / "prediction.npz") as z:
            perf.setdefault(seed, []).append(z["A/0"].copy())
    assert np.array_equal(perf["1"][0], perf["1"][1])
    assert not np.array_equal(perf["1"][0], perf["2"][0])


def test_unknown_model_and_missing_challenge_are_clear_errors(work, data_dir):
    proc = run_cli(["run", "no-such-model", "--challenge", "synthetic-test"], cwd=work, data_dir=data_dir)
    assert proc.returncode == 2 and "unknown model(s) no-such-model" in proc.stderr
    proc = run_cli(["run", "--all", "--challenge", "nope"], cwd=work, data_dir=data_dir)
    assert proc.returncode == 2 and "nope" in proc.stderr and "manifest.json" in proc.stderr
    proc = run_cli(["table"], cwd=work)
    assert proc.returncode == 2 and "no run yet" in proc.stderr


def test_corrupt_or_missing_files_are_named(tmp_path, data_dir):
    src = data_dir / "challenges" / "synthetic-test"
    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    (broken / "hidden.npz").unlink()
    with pytest.raises(ChallengeError, match="hidden.npz: missing"):
        load_challenge(broken)
    shutil.rmtree(broken)
    shutil.copytree(src, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["stimuli"][0]["n_repetitions"] = 5
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ChallengeError, match="expected 5 spike trains|expected \\(5"):
        load_challenge(broken)


def test_without_sandbox_rows_are_marked_and_a_warning_is_loud(work, data_dir):
    proc = run_cli(["run", "poisson", "--challenge", "synthetic-test", "--json", "rows.json", "--no-cache"],
                   cwd=work, data_dir=data_dir, env={"QSNMC_NO_SANDBOX": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "WITHOUT a sandbox" in proc.stderr
    assert "NOT sandboxed" in proc.stdout
    assert read_rows(work / "rows.json")["poisson"]["sandboxed"] is False
