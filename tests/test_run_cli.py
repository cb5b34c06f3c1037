"""The run command end to end: cache, seeds, JSON rows, clear errors, the unsandboxed path."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import read_rows, run_cli
from qsnmc.challenges.store import ChallengeError, load_challenge
from qsnmc.cli.main import main


@pytest.fixture()
def work(tmp_path):
    (tmp_path / "submissions").mkdir()
    return tmp_path


def _latest(work):
    return work / "runs" / (work / "runs" / "LATEST").read_text().strip()


def _poisson_train(run_dir):
    with np.load(run_dir / "poisson" / "prediction.npz") as z:
        return z["A/0"].copy()


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, data_dir):
    """``run poisson lif`` fresh, again (cached), and again with --no-cache: each run's stdout, rows and folder."""
    work = tmp_path_factory.mktemp("cache")
    (work / "submissions").mkdir()
    args = ["run", "poisson", "lif", "--challenge", "synthetic-test", "--json", "rows.json"]
    runs = []
    for extra in ([], [], ["--no-cache"]):
        proc = run_cli(args + extra, cwd=work, data_dir=data_dir)
        assert proc.returncode == 0, proc.stderr
        runs.append((proc.stdout, read_rows(work / "rows.json"), _latest(work)))
    return work, runs


def test_cache_reuses_unchanged_models_and_no_cache_refits(three_runs):
    _, [(_, rows1, _), (out2, rows2, _), (_, rows3, _)] = three_runs
    assert not rows1["lif"]["cached"]
    assert rows2["lif"]["cached"] and rows2["lif"]["performance"] == rows1["lif"]["performance"]
    assert "cached" in out2
    assert not rows3["lif"]["cached"]


def test_seed_makes_stochastic_models_reproducible(three_runs, data_dir):
    work, [(_, _, first), _, (_, _, refitted)] = three_runs
    assert np.array_equal(_poisson_train(first), _poisson_train(refitted))  # seed 0, fitted twice
    proc = run_cli(["run", "poisson", "--challenge", "synthetic-test", "--seed", "2", "--no-cache"], cwd=work,
                   data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert not np.array_equal(_poisson_train(first), _poisson_train(_latest(work)))


def test_unknown_model_and_missing_challenge_are_clear_errors(work, data_dir, monkeypatch, capsys):
    monkeypatch.chdir(work)
    monkeypatch.setenv("QSNMC_DATA_DIR", str(data_dir))
    assert main(["run", "no-such-model", "--challenge", "synthetic-test"]) == 2
    assert "unknown model(s) no-such-model" in capsys.readouterr().err
    assert main(["run", "--all", "--challenge", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--challenge nope: no such challenge" in err and "synthetic-test" in err
    assert main(["table"]) == 2
    assert "no run yet" in capsys.readouterr().err


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


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory, data_dir):
    """One run of the thread and where probes, with OMP_NUM_THREADS=7 in the environment and this
    checkout's qsnmc copied to another folder on PYTHONPATH (as a git worktree is)."""
    import qsnmc

    work = tmp_path_factory.mktemp("probes")
    (work / "submissions").mkdir()
    checkout = work / "checkout"
    shutil.copytree(Path(qsnmc.__file__).parent, checkout / "qsnmc", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "submissions" / "thread_probe.py").write_text(THREAD_PROBE)
    (work / "submissions" / "where_probe.py").write_text(WHERE_PROBE)
    proc = run_cli(["run", "thread-probe", "where-probe", "--challenge", "synthetic-test"], cwd=work,
                   data_dir=data_dir, env={"OMP_NUM_THREADS": "7", "PYTHONPATH": str(checkout)})
    assert proc.returncode == 0, proc.stderr
    return work, checkout


def _assert_threads(run_dir, want: int) -> None:
    record = json.loads((run_dir / "thread-probe" / "record.json").read_text())
    assert record["threads"] == want
    assert record["fit_record"] == {name: str(want) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                                 "MKL_NUM_THREADS")}
    settings = json.loads((run_dir / "run.json").read_text())["settings"]
    assert settings["threads"] == want and settings["jobs"] >= 1


def test_each_worker_gets_one_thread_by_default(probe_run):
    work, _ = probe_run
    _assert_threads(_latest(work), 1)


def test_each_worker_gets_the_thread_count_of_the_run(work, data_dir):
    (work / "submissions" / "thread_probe.py").write_text(THREAD_PROBE)
    proc = run_cli(["run", "thread-probe", "--challenge", "synthetic-test", "--threads", "3"], cwd=work,
                   data_dir=data_dir, env={"OMP_NUM_THREADS": "7"})
    assert proc.returncode == 0, proc.stderr
    _assert_threads(_latest(work), 3)


@pytest.mark.parametrize("flag", ["--jobs", "--threads"])
def test_jobs_and_threads_below_one_are_refused(capsys, flag):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "lif", "--challenge", "synthetic-test", flag, "0"])
    assert exit_.value.code == 2 and "must be at least 1" in capsys.readouterr().err


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


def test_workers_import_qsnmc_from_the_checkout_the_run_uses(probe_run):
    """A checkout that is not the installed one (a git worktree on PYTHONPATH) runs its own code
    in the sandboxed worker, not the installed copy (which the sandbox does not expose)."""
    work, checkout = probe_run
    record = json.loads((_latest(work) / "where-probe" / "record.json").read_text())
    assert record["status"] == "ok", record["reason"]
    assert record["fit_record"]["qsnmc"] == str(checkout / "qsnmc" / "__init__.py")
