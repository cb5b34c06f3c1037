"""``qsnmc run`` over a suite of two cells (the embedded challenge and a small one imported with
``qsnmc data import-arrays``), end to end through real subprocesses: one cached job per (model,
cell, seed), a model failing on one cell is a failed cell, ``table`` and ``report`` read the
suite folder and each cell's folder; the refusals of ``--challenge LIST`` and ``--suite``."""
from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import EMBEDDED, PROJECT, read_rows, run_cli
from qsnmc.cli.checks import EXIT_USAGE, InputError
from qsnmc.cli.suites import SUITES, resolve_challenges

cli = importlib.import_module("qsnmc.cli.main")  # the module (qsnmc.cli.main the attribute is its main())

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import DT_S, simulate_noisy_lif  # noqa: E402

#: fails in fit on the imported cell only, runs on the embedded one
PICKY = '''
import numpy as np
import qsnmc

class Picky(qsnmc.Model):
    name = "picky"
    def fit(self, train):
        if train.challenge == "small":
            raise RuntimeError("picky refuses the small cell")
    def predict(self, stimulus):
        lo, hi = stimulus.window_s
        return np.arange(lo + 0.05, hi, 0.1)

@qsnmc.hookimpl
def qsnmc_register_models():
    return [Picky]
'''
MODELS = ["lif", "poisson", "example-threshold", "picky"]

#: a model predicting no spike, and a 32 Hz clock blind to the input: both at or below chance
SILENT = '''
import numpy as np
import qsnmc

class Silent(qsnmc.Model):
    name = "silent"
    def fit(self, train):
        pass
    def predict(self, stimulus):
        return np.zeros(0)

class Clock(qsnmc.Model):
    name = "clock"
    def fit(self, train):
        pass
    def predict(self, stimulus):
        lo, hi = stimulus.window_s
        return np.arange(lo + 0.0123, hi, 0.031)

@qsnmc.hookimpl
def qsnmc_register_models():
    return [Silent, Clock]
'''


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """A work folder with a data folder holding ``small`` (imported by the CLI: a noisy LIF, 6 s at 2 kHz,
    3 repetitions, trained on 0-4 s) and submissions (example-threshold, picky): (work, data)."""
    if not (EMBEDDED / "manifest.json").is_file():
        pytest.skip("embedded challenge not generated (reference_data/embedded/manifest.json absent)")
    work = tmp_path_factory.mktemp("suite")
    current, voltage = simulate_noisy_lif(6.0, 3, seed=5)
    np.savez(work / "cell.npz", dt_s=np.array(DT_S), current_unit=np.array("pA"), voltage_unit=np.array("mV"),
             **{"current/A": current, "voltage/A": voltage})
    data = work / "data"
    proc = run_cli(["data", "import-arrays", str(work / "cell.npz"), "--train-until", "4", "--name", "small"],
                   cwd=work, data_dir=data)
    assert proc.returncode == 0, proc.stderr
    subs = work / "submissions"
    subs.mkdir()
    shutil.copy(PROJECT / "submissions" / "example_threshold.py", subs)
    (subs / "picky.py").write_text(PICKY)
    return work, data


@pytest.fixture(scope="module")
def suite(imported):
    """One suite run of MODELS over embedded,small at budget 0.02: (work folder, data folder, its process)."""
    work, data = imported
    proc = run_cli(["run", *MODELS, "--challenge", "embedded,small", "--budget", "0.02", "--json", "rows.json",
                    "--jobs", "2"], cwd=work, data_dir=data, timeout=300)
    return work, data, proc


def _latest(work: Path) -> Path:
    return work / "runs" / (work / "runs" / "LATEST").read_text().strip()


@pytest.mark.slow  # part of one suite run of four cheap models on two cells: about 20 s
def test_a_suite_run_writes_one_run_folder_per_cell_and_a_failed_cell_is_not_a_failed_suite(suite):
    work, _, proc = suite
    assert proc.returncode == 1, proc.stderr  # picky failed on one cell, every other job scored
    run_dir = _latest(work)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["suite"] == {"name": "", "challenges": ["embedded", "small"]}
    for cell in ("embedded", "small"):
        assert json.loads((run_dir / cell / "run.json").read_text())["challenge"] == cell
        for model in MODELS:
            rec = json.loads((run_dir / cell / model / "record.json").read_text())
            assert rec["challenge"] == cell and rec["budget"] == 0.02
            assert rec["status"] == ("failed" if (model, cell) == ("picky", "small") else "ok"), rec["reason"]
    failed = json.loads((run_dir / "small" / "picky" / "record.json").read_text())
    assert "picky refuses the small cell" in failed["reason"]
    rows = read_rows(work / "rows.json")
    assert rows["picky"]["failed"].keys() == {"small"} and rows["picky"]["performance"]["embedded"] is not None
    assert rows["picky"]["n_scored"] == 1 and rows["picky"]["ranks"]["small"] == 4  # last on the cell it failed
    assert [r["model"] for r in json.loads((work / "rows.json").read_text())][-1] == "picky"
    for model in ("lif", "poisson", "example-threshold"):
        assert rows[model]["n_scored"] == 2
    leader = next(r for r in json.loads((work / "rows.json").read_text()))
    assert leader["test"] is None
    assert {m: r["test"]["n_cells"] for m, r in rows.items() if m != leader["model"]} == \
        {**{m: 2 for m in MODELS[:3] if m != leader["model"]}, "picky": 1}
    assert "Leader: " in proc.stdout and "with 2 cells the smallest attainable two-sided p is 0.5" in proc.stdout
    assert "small: run: " in proc.stdout or "small: fit: " in proc.stdout  # picky's failure in the notes


@pytest.mark.slow
def test_table_reads_the_suite_folder_and_each_cell_folder(suite):
    work, data, proc = suite
    table = run_cli(["table", "--json", "again.json"], cwd=work, data_dir=data)
    assert table.returncode == 0, table.stderr
    assert json.loads((work / "again.json").read_text()) == json.loads((work / "rows.json").read_text())
    assert table.stdout.splitlines()[2:] == proc.stdout.splitlines()[2:]  # same table (header: same folder)
    cell = run_cli(["table", f"{_latest(work).name}/small", "--json", "small.json"], cwd=work, data_dir=data)
    assert cell.returncode == 0, cell.stderr
    assert cell.stdout.startswith("Challenge 'small'")
    small = read_rows(work / "small.json")
    assert small["picky"]["status"] == "failed" and small["lif"]["status"] == "ok"
    assert small["lif"]["performance"] == read_rows(work / "rows.json")["lif"]["performance"]["small"]


@pytest.mark.slow
def test_a_second_suite_run_reuses_every_scored_job(suite):
    work, data, _ = suite
    first = read_rows(work / "rows.json")
    proc = run_cli(["run", "lif", "poisson", "example-threshold", "--challenge", "embedded,small", "--budget", "0.02",
                    "--json", "cached.json", "--quiet"], cwd=work, data_dir=data, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_dir = _latest(work)
    for cell in ("embedded", "small"):
        for model in ("lif", "poisson", "example-threshold"):
            assert json.loads((run_dir / cell / model / "record.json").read_text())["cached"], (cell, model)
    for model, row in read_rows(work / "cached.json").items():
        assert row["performance"] == first[model]["performance"]


@pytest.mark.slow
def test_report_draws_the_models_by_cells_picture_and_each_cells_report(suite):
    work, data, _ = suite
    run = _latest(work)
    proc = run_cli(["report", str(run), "--out", str(work / "rep")], cwd=work, data_dir=data, timeout=300)
    assert proc.returncode == 0, proc.stderr
    page = (work / "rep" / "report.html").read_text()
    assert (work / "rep" / "suite.png").read_bytes().startswith(b"\x89PNG")
    assert "Models × challenges" in page and "Leader: " in page
    for cell in ("embedded", "small"):
        assert (work / "rep" / cell / "report.html").is_file() and f"href='{cell}/report.html'" in page
    refused = run_cli(["report", str(run), "--stimulus", "A"], cwd=work, data_dir=data)
    assert refused.returncode == 2 and "draw one challenge" in refused.stderr


@pytest.mark.slow
def test_a_suite_runs_on_the_dask_executor_with_the_same_scores(suite):
    pytest.importorskip("distributed")
    work, data, _ = suite
    proc = run_cli(["run", "poisson", "lif", "--challenge", "embedded,small", "--budget", "0.02", "--no-cache",
                    "--executor", "dask", "--jobs", "2", "--json", "dask.json", "--quiet"], cwd=work, data_dir=data,
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    local, remote = read_rows(work / "rows.json"), read_rows(work / "dask.json")
    for model in ("poisson", "lif"):
        assert remote[model]["performance"] == local[model]["performance"]
    rec = json.loads((_latest(work) / "small" / "lif" / "record.json").read_text())
    assert rec["executor"] == "dask" and not rec["cached"]


def _error(err: str) -> str:
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["--suite", "nosuch"], "--suite nosuch: no such suite; suites: drn (drn156, "),
    (["--suite", "drn"], "--suite drn: challenges drn156, drn157, drn159, drn162, drn165 not imported"),
    (["--suite", "drn", "--challenge", "embedded"], "--suite and --challenge exclude each other"),
    (["--challenge", "zz*"], "--challenge zz*: matches no challenge; challenges: "),
    (["--challenge", "small,nosuch"], "--challenge nosuch: no such challenge"),
    (["--challenge", "small,,embedded"], "--challenge small,,embedded: an empty item"),
    (["--challenge", "s*,small"], "--challenge s*,small: names small twice"),
])
def test_bad_challenge_lists_and_suites_are_refused_before_anything_starts(imported, monkeypatch, tmp_path, capsys,
                                                                           argv, message):
    _, data = imported
    monkeypatch.setenv("QSNMC_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "discover_models", lambda *_: pytest.fail("discovery started"))
    assert cli.main(["run", "lif", *argv]) == EXIT_USAGE
    assert _error(capsys.readouterr().err).startswith(f"qsnmc run: {message}")
    assert not (tmp_path / "runs").exists()


def test_names_and_patterns_resolve_in_order(imported, monkeypatch):
    _, data = imported
    monkeypatch.setenv("QSNMC_DATA_DIR", str(data))
    assert resolve_challenges(None, None) == ["embedded"]
    assert resolve_challenges("small,emb*", None) == ["small", "embedded"]
    assert resolve_challenges("*", None) == ["embedded", "small"]
    monkeypatch.setitem(SUITES, "two", ("small", "embedded"))
    assert resolve_challenges(None, "two") == ["small", "embedded"]
    with pytest.raises(InputError):
        resolve_challenges("small", "two")


@pytest.mark.slow  # three sandboxed runs on the small cell: about 5 s
def test_an_empty_prediction_above_entries_below_chance_is_not_named_the_winner(imported, tmp_path):
    work, data = imported
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "silent.py").write_text(SILENT)
    proc = run_cli(["run", "silent", "clock", "poisson", "--challenge", "small", "--submissions", str(subs),
                    "--runs-dir", str(tmp_path / "runs"), "--json", "rows.json", "--quiet"], cwd=tmp_path,
                   data_dir=data, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(tmp_path / "rows.json")
    assert rows["silent"]["rank"] == 1 and rows["silent"]["performance"] == 0.0  # above both others, below zero
    assert all(rows[m]["performance"] < 0 for m in ("clock", "poisson"))
    assert [rows[m]["verdict"] for m in ("silent", "clock", "poisson")] == ["", "", ""]
    assert rows["silent"]["cannot_win"] == "empty prediction: no spike predicted"
    assert "cannot win: empty prediction: no spike predicted" in proc.stdout
    assert proc.stdout.rstrip().endswith("an empty or at-chance prediction is never named the winner.")
