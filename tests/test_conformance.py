"""One conformance test over every registered model (sbibm's rule): each built-in and the
example submission goes through the whole interface, in its sandboxed worker, on a short
challenge with a quick budget, and is scored."""
from __future__ import annotations

import json

import pytest

from conftest import PROJECT, read_rows, run_cli
from qsnmc.fitting.record import check_fit_record
from qsnmc.harness.discovery import discover_models
from qsnmc.settings import check_overrides

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
def test_fit_record_follows_the_one_schema(quick_run, name):
    """Every fitted built-in returns the one fit-record schema (qsnmc.fit_record): its settings (which
    rebuild the same settings through the constructor), fitted parameters, and the held-out score its
    choices were made on, per stimulus with predicted / recorded spike counts."""
    work, rows = quick_run
    assert name in rows
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    fit_record = json.loads((run_dir / name / "record.json").read_text())["fit_record"]
    check_fit_record(fit_record)
    entry = next(e for e in ENTRIES if e.name == name)
    assert entry.settings is not None and set(fit_record["settings"]) == set(entry.settings), name
    assert check_overrides(entry.settings, fit_record["settings"], name) is not None
    assert fit_record["fitted"], f"{name}: no fitted parameters in the record"
    held = fit_record["held_out"]
    assert held and held["per_stimulus"], f"{name}: no held-out score per stimulus"
    for stim, row in held["per_stimulus"].items():
        assert {"gamma_over_r", "n_predicted", "n_recorded", "count_ratio", "included"} <= set(row), (name, stim)
        assert row["n_recorded"] > 0, (name, stim)


@pytest.mark.parametrize("name", sorted(FITTED_BUILTINS))
def test_settings_are_one_frozen_dataclass_with_reasons(name):
    """Each built-in declares its settings as one Settings dataclass, every field with a reason,
    and its param_grid sweeps only those fields."""
    entry = next(e for e in ENTRIES if e.name == name)
    assert entry.settings, f"{name}: no Settings dataclass"
    assert all(spec["doc"] for spec in entry.settings.values()), f"{name}: a setting without its reason"
    assert set(entry.param_grid or {}) <= set(entry.settings), f"{name}: param_grid names a non-setting"
