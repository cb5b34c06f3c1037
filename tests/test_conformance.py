"""One conformance test over every registered model (sbibm's rule): each built-in and the
example submission goes through the whole interface, in its sandboxed worker, on a short
challenge with a quick budget, and is scored."""
from __future__ import annotations

import json

import pytest

from conftest import PROJECT, read_rows, run_cli
from qsnmc.harness.discovery import discover_models

ENTRIES = discover_models(PROJECT / "submissions")
#: built-ins whose fit chooses settings on held-out training data (all but the chance level)
FITTED_BUILTINS = {"lif", "mat", "arx", "adex", "gif", "ddf", "dendplrnn", "gru"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, data_dir):
    work = tmp_path_factory.mktemp("conformance")
    proc = run_cli(
        ["run", "--all", "--challenge", "synthetic-test", "--submissions", str(PROJECT / "submissions"),
         "--budget", "0.02", "--timeout", "300", "--jobs", "2", "--no-cache", "--json", "rows.json"],
        cwd=work, data_dir=data_dir, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    return work, read_rows(work / "rows.json")


def test_every_model_loads():
    assert ENTRIES, "no models found"
    broken = {e.name: e.error for e in ENTRIES if not e.ok}
    assert not broken, broken


@pytest.mark.slow
@pytest.mark.parametrize("name", [e.name for e in ENTRIES])
def test_model_fits_predicts_and_is_scored(quick_run, name):
    work, rows = quick_run
    row = rows[name]
    assert row["status"] == "ok", row["reason"]
    assert row["sandboxed"] in (True, False)
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    record = json.loads((run_dir / name / "record.json").read_text())
    assert isinstance(record["fit_record"], dict)
    json.dumps(record["fit_record"])  # the fit record is JSON all the way down
    assert record["fit_s"] is not None and record["predict_s"] is not None


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FITTED_BUILTINS))
def test_fit_record_shows_held_out_scores_and_counts_per_stimulus(quick_run, name):
    """One key in every fitted built-in's record: per stimulus, held-out Gamma/R and predicted /
    recorded spike counts (``ValidationScore.per_stimulus``), so a reader sees where it fails."""
    work, rows = quick_run
    assert name in rows
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    per = json.loads((run_dir / name / "record.json").read_text())["fit_record"]["held_out_per_stimulus"]
    assert per, f"{name}: empty held_out_per_stimulus"
    for stim, row in per.items():
        assert {"gamma_over_r", "n_predicted", "n_recorded", "count_ratio", "included"} <= set(row), (name, stim)
        assert row["n_recorded"] > 0, (name, stim)
