"""What a new user met: one-line errors (argparse's own, an unreachable Dask scheduler, a missing
--submissions for new), sweep's run-like options, what a failed or cached row says, new's description."""
from __future__ import annotations

import json
import shutil
import time

import pytest

from conftest import FIXTURE_SUBMISSIONS, read_rows, run_cli
from qsnmc.cli.main import main


@pytest.fixture()
def work(tmp_path, data_dir, monkeypatch):
    (tmp_path / "submissions").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QSNMC_DATA_DIR", str(data_dir))
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["run", "lif", "--jobs", "0"], "qsnmc run: argument --jobs: must be at least 1, got 0"),
    (["run", "lif", "--executor", "nope"], "qsnmc run: argument --executor: invalid choice: 'nope'"),
    (["score", "x.txt"], "qsnmc score: the following arguments are required: --challenge, --label"),
    (["data", "import-arrays"], "qsnmc data import-arrays: the following arguments are required: FILE"),
    (["sweep", "lif", "--holdout", "half"], "qsnmc sweep: argument --holdout: invalid float value: 'half'"),
    (["no-such-command"], "qsnmc: argument command: invalid choice: 'no-such-command'"),
])
def test_argparse_errors_are_one_line_like_the_checked_ones(work, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith(message), err
    assert "usage:" not in err and err.rstrip().endswith("--help)")


def test_an_unreachable_dask_scheduler_is_one_line_at_once(work, capsys):
    start = time.perf_counter()
    assert main(["run", "lif", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    took = time.perf_counter() - start
    err = capsys.readouterr().err
    assert err.startswith("qsnmc run: --scheduler tcp://127.0.0.1:9: no Dask scheduler answers there")
    assert err.count("\n") == 1 and took < 10 and not (work / "runs").exists()
    assert main(["run", "lif", "--executor", "dask", "--scheduler", "nonsense:x"]) == 2
    assert "expected tcp://HOST:PORT" in capsys.readouterr().err
    assert main(["run", "lif", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "--scheduler tcp://127.0.0.1:9: goes with --executor dask" in capsys.readouterr().err


def test_new_refuses_a_missing_submissions_folder_as_run_does(work, capsys):
    assert main(["new", "mine", "--submissions", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert err == "qsnmc new: --submissions nowhere: does not exist; expected a folder of drop-in model files (*.py)\n"
    assert not (work / "nowhere").exists()
    assert main(["run", "lif", "--submissions", "nowhere"]) == 2
    assert capsys.readouterr().err.replace("qsnmc run", "qsnmc new") == err


def test_new_gives_the_copy_its_own_description(work, capsys):
    assert main(["new", "mine"]) == 0
    text = (work / "submissions" / "mine.py").read_text()
    assert "example submission" not in text
    assert 'description = "threshold on the low-pass filtered current (started from the example; say what your ' \
           'model is)"' in text
    capsys.readouterr()
    assert main(["list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "| mine " in x)
    assert "example submission" not in line and "started from the example" in line


def test_a_failed_row_says_where_its_traceback_is(work, data_dir):
    shutil.copy(FIXTURE_SUBMISSIONS / "crash.py", work / "submissions")
    proc = run_cli(["run", "crash", "--challenge", "synthetic-test", "--quiet"], cwd=work, data_dir=data_dir)
    assert proc.returncode == 3
    run = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    record = run / "crash" / "record.json"
    line = next(x for x in proc.stderr.splitlines() if x.startswith("crash failed"))
    assert f"details in {record} (traceback)" in line and "worker.log" in line
    assert "Traceback" in json.loads(record.read_text())["traceback"]


def test_a_cached_row_says_the_timeout_did_not_apply(work, data_dir):
    args = ["run", "poisson", "--challenge", "synthetic-test", "--quiet"]
    first = run_cli(args, cwd=work, data_dir=data_dir)
    assert first.returncode == 0 and "note:" not in first.stderr
    again = run_cli(args + ["--timeout", "0.001"], cwd=work, data_dir=data_dir)
    assert again.returncode == 0 and "cached" in again.stdout
    assert ("note: poisson reused a cached prediction (no fit ran), so --timeout 0.001 did not apply to it; "
            "--no-cache refits under the limits") in again.stderr
    quiet = run_cli(args, cwd=work, data_dir=data_dir)  # cached, no limit given: nothing to say
    assert "note:" not in quiet.stderr


SEEDED = '''
import numpy as np
import qsnmc


class Seeded(qsnmc.Model):
    """Spikes at a lag after each training spike, thinned by a seeded coin; records what it was given."""
    name = "seeded"
    param_grid = {"lag_ms": [0.0, 40.0]}

    def __init__(self, seed=0, budget=1.0, lag_ms=0.0, keep=1.0):
        super().__init__(seed, budget)
        self.lag_s, self.keep = lag_ms / 1e3, keep

    def fit(self, train):
        self.spikes = np.asarray(train.spike_times_s[0])
        return {"seed": self.seed, "keep": self.keep, "lag_ms": 1e3 * self.lag_s}

    def predict(self, stimulus):
        start, stop = stimulus.window_s
        rng = np.random.default_rng(self.seed)
        t = self.spikes[rng.uniform(size=self.spikes.size) < self.keep]
        t = np.unique(np.round(t % (stop - start) + start + self.lag_s, 4))
        return t[(t >= start) & (t <= stop)]


@qsnmc.hookimpl
def qsnmc_register_models():
    return [Seeded]
'''


def test_sweep_takes_param_json_and_seeds_like_run(work, data_dir):
    (work / "submissions" / "seeded.py").write_text(SEEDED)
    proc = run_cli(["sweep", "seeded", "--challenge", "synthetic-test", "--param", "keep=0.5", "--seeds", "0-1",
                    "--json", "sweep.json", "--quiet"], cwd=work, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((work / "sweep.json").read_text())
    assert [r["params"] for r in rows] == [{"keep": 0.5, "lag_ms": 0.0}, {"keep": 0.5, "lag_ms": 40.0}]
    run = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    for label in ("seeded@000", "seeded@001"):
        fits = [json.loads((run / label / f"seed-{s}" / "record.json").read_text()) for s in (0, 1)]
        assert [f["fit_record"]["seed"] for f in fits] == [0, 1] and {f["fit_record"]["keep"] for f in fits} == {0.5}
        row = next(r for r in rows if r["label"] == label)
        assert row["performance"] == pytest.approx(sum(f["performance"] for f in fits) / 2)  # the seeds pooled
    assert "--param keep=0.5" in proc.stdout  # the run command it suggests carries the fixed setting
    for param, message in (("lag_ms=3", "--param lag_ms: the grid sweeps it"), ("nope=1", "--param: ")):
        bad = run_cli(["sweep", "seeded", "--challenge", "synthetic-test", "--param", param], cwd=work,
                      data_dir=data_dir)
        err = [x for x in bad.stderr.splitlines() if not x.startswith("WARNING: bubblewrap")]  # where bwrap lacks
        assert bad.returncode == 2 and len(err) == 1 and message in err[0], bad.stderr
