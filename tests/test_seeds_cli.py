"""``qsnmc run --seeds``: malformed specs refused before any work; each (model, seed) its own job and
cache entry; the table, report and records of a run of several seeds."""
from __future__ import annotations

import json

import pytest

from conftest import read_rows, run_cli
from qsnmc.cli.main import main
from qsnmc.cli.seeds import parse_seeds


def test_seed_specs_parse_in_the_order_given():
    assert parse_seeds("3") == (3,)
    assert parse_seeds("0-2") == (0, 1, 2)
    assert parse_seeds("0,1,5") == (0, 1, 5)
    assert parse_seeds("0-2,7") == (0, 1, 2, 7)
    assert parse_seeds(" 5 , 1-2 ") == (5, 1, 2)


@pytest.mark.parametrize("spec, why", [
    ("", "empty"), ("-1", "negative seed '-1'"), ("2-0", "reversed range '2-0'"), ("x", "'x' is not an integer"),
    ("1.5", "'1.5' is not an integer"), ("0-2,1", "seed 1 given twice"), ("0,,1", "an empty item"),
])
def test_malformed_seed_specs_are_one_line_errors_before_any_work(tmp_path, capsys, spec, why):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_:
        main(["run", "no-such-model", "--runs-dir", str(runs), f"--seeds={spec}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and err.startswith(f"qsnmc run: --seeds {spec!r}: {why}")
    assert "expected non-negative integers and ranges A-B" in err and "0-2,7" in err
    assert not runs.exists()  # no run folder, and no discovery (the unknown model is not even reported)


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "qsnmc run: --seed -1: negative; expected a non-negative integer"),
    (["--seed", "one"], "qsnmc run: --seed 'one': not an integer"),
    (["--seed", "1", "--seeds", "0-2"], "qsnmc run: --seed and --seeds exclude each other"),
    (["--seeds", "0-2", "--seed", "1"], "qsnmc run: --seed and --seeds exclude each other"),
])
def test_bad_seed_options_are_one_line_errors(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "lif", "--runs-dir", str(tmp_path / "runs"), *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith(message), err
    assert not (tmp_path / "runs").exists()


def test_a_malformed_spec_exits_with_status_2_from_the_shell(tmp_path):
    proc = run_cli(["run", "lif", "--seeds", "3-1", "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "reversed range '3-1'" in proc.stderr


SEEDY = '''
import numpy as np
import qsnmc

class Seedy(qsnmc.Model):
    """A regular train at the recorded rate, its phase drawn from the seed: each seed scores differently."""
    name = "seedy"

    def fit(self, train):
        stim = train.stimuli[0]
        n = sum(len(t) for t in stim.spike_times_s) / len(stim.spike_times_s)
        self.rate_hz = n / (stim.window_s[1] - stim.window_s[0])
        self.phase = np.random.default_rng(self.seed).uniform()
        return {"curves": {"loss": {"x": [1, 2, 3], "y": [3.0, 2.0, 1.5 + self.seed],
                                    "x_label": "epoch", "y_label": "loss (nats)"}},
                "seconds_per_generation": [0.1, 0.2, 0.1], "blown_up_per_generation": [0, 0, 0]}

    def predict(self, stimulus):
        start, stop = stimulus.window_s
        return np.arange(start + self.phase / self.rate_hz, stop, 1.0 / self.rate_hz)

@qsnmc.hookimpl
def qsnmc_register_models():
    return [Seedy]
'''


def _cached(rows: dict, model: str) -> list[bool]:
    return [s["cached"] for s in rows[model]["seeds"]]


@pytest.mark.slow
def test_each_model_and_seed_is_its_own_cached_job(tmp_path, data_dir):
    work = tmp_path
    (work / "submissions").mkdir()
    seedy = work / "submissions" / "seedy.py"
    seedy.write_text(SEEDY)
    base = ["run", "poisson", "seedy", "--challenge", "synthetic-test", "--quiet"]

    first = run_cli(base + ["--seeds", "0-1", "--json", "r1.json"], cwd=work, data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    rows = read_rows(work / "r1.json")
    assert _cached(rows, "seedy") == [False, False] and rows["seedy"]["n_scored"] == 2
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    for model in ("poisson", "seedy"):
        for seed in (0, 1):
            record = json.loads((run_dir / model / f"seed-{seed}" / "record.json").read_text())
            assert record["seed"] == seed and record["status"] == "ok"
            assert record["numerics"]["blas"] and "dispatched" in record["numerics"]["numpy_cpu_features"]
            assert "torch" not in record["numerics"]  # neither model imports torch
    info = json.loads((run_dir / "run.json").read_text())
    assert info["settings"]["seeds"] == [0, 1] and info["numerics"]["blas"]
    assert "seeds 0, 1" in first.stdout and "seed SD %" in first.stdout and "2/2" in first.stdout
    perf = [s["performance"] for s in rows["seedy"]["seeds"]]
    assert perf[0] != perf[1] and rows["seedy"]["performance"] == pytest.approx(sum(perf) / 2)

    # a new seed: only it is fitted
    second = run_cli(base + ["--seeds", "0-2", "--json", "r2.json"], cwd=work, data_dir=data_dir)
    assert second.returncode == 0, second.stderr
    rows = read_rows(work / "r2.json")
    assert _cached(rows, "seedy") == [True, True, False] and _cached(rows, "poisson") == [True, True, False]
    assert [s["performance"] for s in rows["seedy"]["seeds"]][:2] == perf

    # one model's code changes: only its seeds are fitted again
    seedy.write_text(SEEDY + "\n# changed\n")
    third = run_cli(base + ["--seeds", "0-2", "--json", "r3.json"], cwd=work, data_dir=data_dir)
    assert third.returncode == 0, third.stderr
    rows = read_rows(work / "r3.json")
    assert _cached(rows, "seedy") == [False, False, False] and _cached(rows, "poisson") == [True, True, True]

    # table and report read the run of several seeds
    table = run_cli(["table", "--json", "t.json"], cwd=work)
    assert table.returncode == 0, table.stderr
    assert read_rows(work / "t.json") == rows
    report = run_cli(["report"], cwd=work, data_dir=data_dir)
    assert report.returncode == 0, report.stderr
    html = (work / report.stdout.strip()).read_text()
    assert "each seed" in html and "seedy (seed 0)" not in html  # labels live in the PNGs, not the text
    assert "seedy: loss." in html and "seconds_per_generation" not in html and "blown_up" not in html
    assert (work / report.stdout.strip()).parent.joinpath("training_curves.png").is_file()
