"""The run command end to end: cache, seeds, JSON rows, clear errors, the unsandboxed path."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

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


THREAD_PROBE = '''
import os
import numpy as np
import qsnmc

class ThreadProbe(qsnmc.Model):
    name = "thread-probe"
    def fit(self, train):
        return {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    def predict(self, stimulus):
        return np.zeros(0)

@qsnmc.hookimpl
def qsnmc_register_models():
    return [ThreadProbe]
'''


@pytest.mark.parametrize("threads", [None, 3])
def test_each_worker_gets_the_thread_count_of_the_run(work, data_dir, threads):
    (work / "submissions" / "thread_probe.py").write_text(THREAD_PROBE)
    extra = [] if threads is None else ["--threads", str(threads)]
    proc = run_cli(["run", "thread-probe", "--challenge", "synthetic-test", *extra], cwd=work, data_dir=data_dir,
                   env={"OMP_NUM_THREADS": "7"})
    assert proc.returncode == 0, proc.stderr
    record = json.loads((_latest(work) / "thread-probe" / "record.json").read_text())
    want = str(threads or 1)
    assert record["threads"] == int(want)
    assert record["fit_record"] == {"OMP_NUM_THREADS": want, "OPENBLAS_NUM_THREADS": want, "MKL_NUM_THREADS": want}
    settings = json.loads((_latest(work) / "run.json").read_text())["settings"]
    assert settings["threads"] == int(want) and settings["jobs"] >= 1


def test_jobs_and_threads_below_one_are_refused(work, data_dir):
    for flag in ("--jobs", "--threads"):
        proc = run_cli(["run", "lif", "--challenge", "synthetic-test", flag, "0"], cwd=work, data_dir=data_dir)
        assert proc.returncode == 2 and "must be at least 1" in proc.stderr


WHERE_PROBE = '''
import numpy as np
import qsnmc

class WhereProbe(qsnmc.Model):
    name = "where-probe"
    def fit(self, train):
        return {"qsnmc": qsnmc.__file__}
    def predict(self, stimulus):
        return np.zeros(0)

@qsnmc.hookimpl
def qsnmc_register_models():
    return [WhereProbe]
'''


def test_workers_import_qsnmc_from_the_checkout_the_run_uses(work, data_dir, tmp_path):
    """A checkout that is not the installed one (a git worktree on PYTHONPATH) runs its own code
    in the sandboxed worker, not the installed copy (which the sandbox does not expose)."""
    import qsnmc

    checkout = tmp_path / "checkout"
    shutil.copytree(Path(qsnmc.__file__).parent, checkout / "qsnmc", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "submissions" / "where_probe.py").write_text(WHERE_PROBE)
    proc = run_cli(["run", "where-probe", "--challenge", "synthetic-test"], cwd=work, data_dir=data_dir,
                   env={"PYTHONPATH": str(checkout)})
    assert proc.returncode == 0, proc.stderr
    record = json.loads((_latest(work) / "where-probe" / "record.json").read_text())
    assert record["status"] == "ok", record["reason"]
    assert record["fit_record"]["qsnmc"] == str(checkout / "qsnmc" / "__init__.py")
