"""A run starts its jobs longest first (each model's ``typical_fit_s``; unknown durations first),
returns its rows in the given order, and a malformed ``typical_fit_s`` is that source's failed row."""
from __future__ import annotations

import json

from conftest import read_rows, run_cli
from qsnmc.harness.discovery import ModelEntry
from qsnmc.harness.plugins import PluginSource
from qsnmc.harness.runner import Task, longest_first

TIMED = '''
import time
import numpy as np
import qsnmc

def timed(model_name, seconds):
    class Timed(qsnmc.Model):
        name = model_name
        typical_fit_s = seconds
        def fit(self, train):
            return {"started_ns": time.time_ns()}
        def predict(self, stimulus):
            return np.zeros(0)
    return Timed

@qsnmc.hookimpl
def qsnmc_register_models():
    return [timed("short", 1), timed("long", 100), timed("unknown", None), timed("middle", 10)]
'''

BAD_HINT = '''
import numpy as np
import qsnmc

class BadHint(qsnmc.Model):
    name = "bad-hint"
    typical_fit_s = "soon"
    def fit(self, train):
        pass
    def predict(self, stimulus):
        return np.zeros(0)

@qsnmc.hookimpl
def qsnmc_register_models():
    return [BadHint]
'''


def _task(name: str, typical: float | None) -> Task:
    return Task(ModelEntry(name, PluginSource("submission", f"{name}.py"), typical_fit_s=typical))


def test_longest_first_puts_unknown_durations_first_and_keeps_ties_in_order():
    tasks = [_task("a", 1.0), _task("b", 50.0), _task("c", None), _task("d", 50.0), _task("e", 0.0)]
    assert longest_first(tasks, budget=1.0) == [2, 1, 3, 0, 4]
    assert longest_first(tasks, budget=0.01) == [2, 1, 3, 0, 4]  # the budget scales every cost alike


def test_a_run_starts_the_longest_jobs_first_and_lists_rows_in_the_given_order(tmp_path, data_dir):
    subs = tmp_path / "submissions"
    subs.mkdir()
    (subs / "timed.py").write_text(TIMED)
    (subs / "bad_hint.py").write_text(BAD_HINT)
    proc = run_cli(["run", "short", "long", "unknown", "middle", "bad_hint", "--challenge", "synthetic-test",
                    "--submissions", str(subs), "--jobs", "1", "--json", "rows.json", "--runs-dir", "runs"],
                   cwd=tmp_path, data_dir=data_dir)
    rows = read_rows(tmp_path / "rows.json")
    assert rows["bad_hint"]["status"] == "failed"  # a failed source's row is named after its file
    assert "typical_fit_s must be a number of seconds >= 0, got 'soon'" in rows["bad_hint"]["reason"]
    assert proc.returncode == 1, proc.stderr  # the bad hint's row failed; the others ran
    run_dir = next((tmp_path / "runs").glob("2*"))
    started = {m: json.loads((run_dir / m / "record.json").read_text())["fit_record"]["started_ns"]
               for m in ("short", "long", "unknown", "middle")}
    assert sorted(started, key=started.get) == ["unknown", "long", "middle", "short"]
    assert all(r["status"] == "ok" for m, r in rows.items() if m != "bad_hint")
    assert list(rows)[:4] == ["short", "long", "unknown", "middle"]  # equal scores: the order asked for
