"""A crashing, hanging, memory-hungry, NaN-returning or cheating submission becomes a
failed (or zero) row while the others are scored; nothing computed is lost."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import FIXTURE_SUBMISSIONS, read_rows, run_cli
from qsnmc.harness.sandbox import bwrap_path

BAD = ["crash", "hang", "segfault", "memhog", "returns-nan", "unsorted", "outside-window", "absurd-rate",
       "not-numbers", "cheat", "noisy", "plain-class", "bad-init"]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, data_dir):
    work = tmp_path_factory.mktemp("bad-run")
    subs = work / "submissions"
    shutil.copytree(FIXTURE_SUBMISSIONS, subs, ignore=shutil.ignore_patterns("clash.py"))  # see test_discovery
    proc = run_cli(
        ["run", "poisson", "lif", *BAD, "--challenge", "synthetic-test", "--submissions", str(subs),
         "--timeout", "20", "--memory-limit", "1500", "--jobs", "2", "--json", "rows.json"],
        cwd=work, data_dir=data_dir,
    )
    return work, proc


def test_run_survives_and_scores_the_good_models(bad_run):
    work, proc = bad_run
    assert proc.returncode == 1, proc.stderr  # some rows failed, the others are scored
    rows = read_rows(work / "rows.json")
    assert rows["lif"]["status"] == "ok" and rows["lif"]["performance"] > 0.3
    assert rows["poisson"]["status"] == "ok" and abs(rows["poisson"]["performance"]) < 0.3
    assert "lif" in proc.stdout and "Γ/R %" in proc.stdout


@pytest.mark.parametrize(
    "model, reason",
    [
        ("crash", "deliberate failure in fit"),
        ("hang", "timed out after 20 s"),
        ("segfault", "worker died (killed by SIGSEGV)"),
        ("memhog", "memory limit"),
        ("returns-nan", "predicted train 0: spike times not finite"),
        ("unsorted", "predicted train 0: spike times not strictly increasing"),
        ("outside-window", "outside the window"),
        ("absurd-rate", "predicted train 0: rate "),
        ("not-numbers", "predict"),
        ("bad-init", "add seed and budget to its __init__"),
    ],
)
def test_each_bad_model_is_a_failed_row_with_its_reason(bad_run, model, reason):
    work, _ = bad_run
    row = read_rows(work / "rows.json")[model]
    assert row["status"] == "failed" and row["rank"] is None
    assert reason in row["reason"], row["reason"]


def test_a_plain_class_without_seed_or_budget_runs(bad_run):
    work, _ = bad_run
    row = read_rows(work / "rows.json")["plain-class"]
    assert row["status"] == "ok", row["reason"]
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    rec = json.loads((run_dir / "plain-class" / "record.json").read_text())
    assert rec["fit_record"] == {"seed_seen": 0, "budget_seen": 1.0}


def test_a_flood_of_output_keeps_the_head_and_tail_of_the_log(bad_run):
    work, _ = bad_run
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    rec = json.loads((run_dir / "noisy" / "record.json").read_text())
    assert rec["status"] == "ok"
    logs = [p for p in (run_dir / "noisy").iterdir() if p.suffix == ".log"]
    assert logs, list((run_dir / "noisy").iterdir())
    size = sum(p.stat().st_size for p in logs)
    assert size < 2.5e6  # 15 MB written; the log keeps 1 MB of head and 1 MB of tail
    text = logs[0].read_text()
    assert "bytes of output dropped here" in text and text.rstrip().endswith("LAST LINE OF NOISE")
    assert rec["log_dropped_bytes"] > 12e6


def test_every_record_is_on_disk(bad_run):
    work, _ = bad_run
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    names = {json.loads(p.read_text())["model"] for p in run_dir.glob("*/record.json")}
    assert {"poisson", "lif", *BAD} <= names
    rec = json.loads((run_dir / "lif" / "record.json").read_text())
    for key in ("seed", "versions", "source_sha256", "challenge_source", "fit_s", "predict_s", "fit_record", "scores"):
        assert key in rec
    assert (run_dir / "lif" / "prediction.npz").is_file()


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap not available")
def test_cheater_finds_no_hidden_data(bad_run):
    work, _ = bad_run
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    rec = json.loads((run_dir / "cheat" / "record.json").read_text())
    assert rec["sandboxed"] is True
    found = rec["fit_record"]["found"]
    assert set(found) >= {"embedded_hidden", "generator", "git_objects", "imported_hidden", "runs_cache", "shared_2007"}
    assert not any(found.values()), found
    assert rec["status"] == "ok" and rec["performance"] == 0.0  # it predicted nothing


def test_table_reprints_the_last_run(bad_run):
    work, _ = bad_run
    proc = run_cli(["table", "--json", "again.json"], cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert read_rows(work / "again.json") == read_rows(work / "rows.json")
