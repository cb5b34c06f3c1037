"""qsnmc score: spike-time files scored as a plugin's row, refused in one line when they cannot be,
ranked with other runs; and an outside model end to end (kit -> examples/ script -> score)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT, read_rows, run_cli
from qsnmc.challenges.store import load_challenge
from qsnmc.cli.main import main
from qsnmc.harness.runstore import RECORD, RUN
from qsnmc.scoring.evaluation import score_predictions

SCRIPT = PROJECT / "examples" / "outside_threshold.py"


@pytest.fixture()
def env(tmp_path, data_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QSNMC_DATA_DIR", str(data_dir))
    return tmp_path


@pytest.fixture(scope="module")
def challenge(data_dir):
    return load_challenge(data_dir / "challenges" / "synthetic-two")


def _trains(challenge, shift_s: float = 0.001) -> dict[str, list[np.ndarray]]:
    """A prediction per repetition: the recorded test spikes shifted by ``shift_s`` (inside the window)."""
    out = {}
    for s in challenge.test_stimuli():
        a, b = s.window_s
        out[s.name] = [t[(t + shift_s > a) & (t + shift_s < b)] + shift_s for t in challenge.test_recordings(s.name)]
    return out


def _write_txt(path: Path, times: np.ndarray, header: str = "# unit: s", scale: float = 1.0) -> Path:
    path.write_text((header + "\n" if header else "") + "".join(f"{t * scale:.17g}\n" for t in times))
    return path


def _score(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["score", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _record(runs: Path, label: str) -> dict:
    run = runs / (runs / "LATEST").read_text().strip()
    return json.loads((run / label / RECORD).read_text())


def test_every_format_gives_the_plugin_scoring_of_the_same_trains(env, challenge, capsys):
    trains = _trains(challenge)
    want = score_predictions(challenge, trains)
    folders = {}
    per_rep = env / "per_rep"
    per_rep.mkdir()
    for name, reps in trains.items():
        for r, t in enumerate(reps):
            _write_txt(per_rep / f"{name}-{r}.txt", t)
    folders["per_rep"] = [str(per_rep)]
    ms = env / "ms"
    ms.mkdir()
    for name, reps in trains.items():
        for r, t in enumerate(reps):
            _write_txt(ms / f"pred_{name}_{r}.txt", t, f"# predicted by a test\n# stimulus: {name}\n# repetition: {r}\n"
                       "# unit: ms", 1e3)
    folders["ms headers"] = [str(ms)]
    rows = ["stimulus,repetition,time_ms"] + [f"{name},{r},{t * 1e3:.17g}" for name, reps in trains.items()
                                               for r, ts in enumerate(reps) for t in ts]
    (env / "all.csv").write_text("\n".join(rows) + "\n")
    folders["csv"] = [str(env / "all.csv")]
    np.savez(env / "all.npz", unit=np.array("s"), **{f"{n}/{r}": t for n, reps in trains.items()
                                                      for r, t in enumerate(reps)})
    folders["npz"] = [str(env / "all.npz")]
    for label, files in folders.items():
        start = time.perf_counter()
        code, out, err = _score([*files, "--challenge", "synthetic-two", "--label", label.replace(" ", "-")], capsys)
        took = time.perf_counter() - start
        assert code == 0, err
        rec = _record(env / "runs", label.replace(" ", "-"))
        assert rec["status"] == "ok" and rec["source"] == "files"
        assert rec["gamma"] == want.gamma and rec["performance"] == want.performance and rec["error"] == want.error
        assert rec["scores"] == json.loads(json.dumps(want.to_dict()["stimuli"]))
        assert all(len(f["sha256"]) == 64 and Path(f["path"]).is_file() for f in rec["files"])
        assert "only entry" in out
        print(f"score {label}: {took:.3f} s in process")


def test_one_train_for_every_repetition(env, challenge, capsys):
    one = {s.name: challenge.test_recordings(s.name)[0] for s in challenge.test_stimuli()}
    for name, t in one.items():
        _write_txt(env / f"{name}.txt", t)
    code, _, err = _score([str(env / "A.txt"), str(env / "B.txt"), "--challenge", "synthetic-two", "--label", "one"],
                          capsys)
    assert code == 0, err
    assert _record(env / "runs", "one")["performance"] == score_predictions(challenge, one).performance


def _files(env: Path, challenge, case: str) -> tuple[list[str], list[str]]:
    """Files and extra options of a refusal case."""
    trains = {n: reps[0] for n, reps in _trains(challenge).items()}
    a, b = trains["A"], trains["B"]
    files = {"A": a, "B": b}
    extra: list[str] = []
    header = "# unit: s"
    if case == "unknown stimulus":
        files["C"] = a
    elif case == "missing stimulus":
        del files["B"]
    elif case == "outside the window":
        files["A"] = np.append(a, 20.5)
    elif case == "unsorted":
        files["A"] = a[::-1]
    elif case == "repeated":
        files["A"] = np.sort(np.append(a, a[3]))
    elif case == "NaN":
        files["A"] = np.append(a, np.nan)
    elif case == "above 500 Hz":
        files["A"] = np.arange(14.0005, 20.0, 0.0015)
    elif case in ("unit not said", "unit in ms read as s"):
        header = ""
        extra = ["--unit", "s"] if case == "unit in ms read as s" else []
    elif case == "units disagree":
        extra = ["--unit", "ms"]
    elif case == "missing repetition":
        paths = [str(_write_txt(env / f"A-{r}.txt", a)) for r in (0, 1, 3)]
        return paths + [str(_write_txt(env / "B.txt", b))], extra
    elif case == "not a number":
        (env / "A.txt").write_text("# unit: s\n14.5\nfourteen\n")
        return [str(env / "A.txt"), str(_write_txt(env / "B.txt", b))], extra
    scale = 1e3 if case == "unit in ms read as s" else 1.0
    return [str(_write_txt(env / f"{n}.txt", t, header, scale)) for n, t in files.items()], extra


REFUSALS = {
    "unknown stimulus": "C.txt: no test stimulus 'C'; test stimuli: A, B",
    "missing stimulus": "no prediction for test stimulus 'B'",
    "outside the window": "A.txt: spike times 14.0",
    "unsorted": "A.txt: spike times not strictly increasing",
    "repeated": "A.txt: spike times not strictly increasing",
    "NaN": "A.txt: spike times not finite (NaN or inf)",
    "above 500 Hz": "A.txt: rate 667 Hz above 500 Hz",
    "unit not said": "A.txt: ambiguous unit: say s or ms",
    "unit in ms read as s": "outside the window 14-20 s (read in s)",
    "units disagree": "A.txt: the file says unit s, --unit says ms",
    "missing repetition": "stimulus 'A': no prediction for repetition 2",
    "not a number": "A.txt: line 3: 'fourteen' is not a number",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_files_are_refused_in_one_line_and_nothing_is_written(env, challenge, capsys, case):
    files, extra = _files(env, challenge, case)
    code, out, err = _score([*files, *extra, "--challenge", "synthetic-two", "--label", "bad"], capsys)
    assert code == 2 and not out
    assert err.startswith("qsnmc score: ") and err.count("\n") == 1 and "Traceback" not in err
    assert REFUSALS[case] in err, err
    assert not (env / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--label", "no spaces"], "--label 'no spaces': expected letters"),
    (["--challenge", "nope"], "--challenge nope: no such challenge"),
    (["--against", "nowhere"], "nowhere: no qsnmc run there"),
])
def test_bad_options_are_refused_in_one_line(env, challenge, capsys, args, message):
    files, _ = _files(env, challenge, "")
    opts = {"--challenge": "synthetic-two", "--label": "ok"}
    opts.update(dict(zip(args[::2], args[1::2])))
    code, _, err = _score([*files, *[x for kv in opts.items() for x in kv]], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (env / "runs").exists()


def _hand_made_run(runs: Path, name: str, challenge, rows: dict[str, tuple[float, float]]) -> Path:
    """A run folder written by hand: run.json as a run writes it, one scored record per model (P, Err)."""
    from qsnmc.harness.outside import run_info

    run = runs / name
    info = run_info(challenge, [])
    info.pop("outside")
    info["settings"] = {"seed": 0, "seeds": [], "budget": 1.0}
    (run).mkdir(parents=True)
    (run / RUN).write_text(json.dumps(info))
    for model, (p, err) in rows.items():
        (run / model).mkdir()
        (run / model / RECORD).write_text(json.dumps({
            "model": model, "source": "built-in", "status": "ok", "seed": 0, "gamma": p * 0.8, "performance": p,
            "error": err, "reason": "", "cached": False, "sandboxed": True, "fit_s": 1.0, "predict_s": 0.1,
            "scores": []}))
    return run


def test_against_ranks_the_row_with_a_runs_models_by_the_win_rule(env, challenge, capsys):
    trains = _trains(challenge)
    p = score_predictions(challenge, trains).performance
    for name, reps in trains.items():
        for r, t in enumerate(reps):
            _write_txt(env / f"{name}-{r}.txt", t)
    files = [str(env / f"{n}-{r}.txt") for n in trains for r in range(4)]
    below = _hand_made_run(env / "runs", "below", challenge, {"lif": (p - 0.3, 0.01), "mat": (p - 0.4, 0.01)})
    code, out, err = _score([*files, "--challenge", "synthetic-two", "--label", "mine", "--against", str(below),
                             "--json", "rows.json"], capsys)
    assert code == 0, err
    rows = read_rows(env / "rows.json")
    assert rows["mine"]["rank"] == 1 and rows["mine"]["verdict"] == "significant win"
    assert [rows[m]["rank"] for m in ("lif", "mat")] == [2, 3] and "Winner: mine" in out
    assert not (below / "mine").exists()  # the run ranked against is left as it was
    mine_run = env / "runs" / (env / "runs" / "LATEST").read_text().strip()
    above = _hand_made_run(env / "runs", "above", challenge, {"gif": (p + 0.5, 0.01), "lif": (p - 0.3, 0.01)})
    code, out, err = _score([*files, "--challenge", "synthetic-two", "--label", "mine2", "--against", "above",
                             "--json", "rows.json"], capsys)
    rows = read_rows(env / "rows.json")
    assert code == 0 and rows["gif"]["verdict"] == "significant win" and rows["mine2"]["rank"] == 2
    # the same ranking from `qsnmc table` over the runs; a name in two runs is told apart by its run
    assert main(["table", "below", str(mine_run), "above", "--json", "table.json"]) == 0
    table = read_rows(env / "table.json")
    assert set(table) == {"lif@below", "lif@above", "mat", "gif", "mine"}
    assert table["gif"]["rank"] == 1 and table["mine"]["rank"] == 2 and table["mine"]["performance"] == p
    capsys.readouterr()


def test_runs_on_other_challenges_do_not_rank_together(env, challenge, data_dir, capsys):
    other = load_challenge(data_dir / "challenges" / "synthetic-test")
    elsewhere = _hand_made_run(env / "runs", "elsewhere", other, {"lif": (0.5, 0.01)})
    files, _ = _files(env, challenge, "")
    code, _, err = _score([*files, "--challenge", "synthetic-two", "--label", "mine", "--against", str(elsewhere)],
                          capsys)
    assert code == 2 and "a run on challenge 'synthetic-test'" in err and err.count("\n") == 1
    assert sorted(p.name for p in (env / "runs").iterdir()) == ["elsewhere"]
    _hand_made_run(env / "runs", "here", challenge, {"lif": (0.5, 0.01)})
    assert main(["table", "here", "elsewhere"]) == 2
    assert "rows rank only on one challenge" in capsys.readouterr().err


TWIN = '''"""examples/outside_threshold.py as a plugin: the same functions, given qsnmc's TrainingData.
The script's text is carried here (a sandboxed worker sees only its submission, not the checkout)."""
import types

import qsnmc

SCRIPT = {script!r}
outside = types.ModuleType("outside_threshold")
exec(compile(SCRIPT, "outside_threshold.py", "exec"), outside.__dict__)


class OutsideTwin(qsnmc.Model):
    name = "outside-twin"
    description = "examples/outside_threshold.py as a plugin"

    def fit(self, train):
        training = [{{"current_pA": s.current_pA, "window_s": s.window_s, "spike_times_s": list(s.spike_times_s)}}
                    for s in train.stimuli]
        self.params = outside.fit(training, train.dt_s, train.delta_s)
        return {{}}

    def predict(self, stimulus):
        return outside.predict(stimulus.current_pA, stimulus.dt_s, stimulus.window_s, self.params)


@qsnmc.hookimpl
def qsnmc_register_models():
    return [OutsideTwin]
'''


def test_an_outside_model_scores_what_it_scores_as_a_plugin(tmp_path, data_dir):
    """kit -> examples/outside_threshold.py (no qsnmc) -> qsnmc score equals the same code run as a plugin."""
    assert "qsnmc" not in {line.split()[1].split(".")[0] for line in SCRIPT.read_text().splitlines()
                           if line.startswith(("import ", "from "))}
    proc = run_cli(["data", "export-kit", "synthetic-two", "kit", "--no-nwb"], cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, str(SCRIPT), "kit", "predictions"], cwd=tmp_path, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["A.txt", "B.txt"]
    proc = run_cli(["score", "predictions", "--challenge", "synthetic-two", "--label", "outside", "--json",
                    "scored.json"], cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    scored_run = tmp_path / "runs" / (tmp_path / "runs" / "LATEST").read_text().strip()
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "outside_twin.py").write_text(TWIN.format(script=SCRIPT.read_text()))
    proc = run_cli(["run", "outside-twin", "--challenge", "synthetic-two", "--submissions", "subs", "--json",
                    "plugin.json", "--quiet"], cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    plugin_run = tmp_path / "runs" / (tmp_path / "runs" / "LATEST").read_text().strip()
    scored, plugin = read_rows(tmp_path / "scored.json")["outside"], read_rows(tmp_path / "plugin.json")["outside-twin"]
    for key in ("status", "gamma", "performance", "error", "spike_counts"):
        assert scored[key] == plugin[key], key
    assert scored["performance"] > 0.05  # a real fit, not an empty prediction
    a = json.loads((scored_run / "outside" / RECORD).read_text())
    b = json.loads((plugin_run / "outside-twin" / RECORD).read_text())
    assert a["scores"] == b["scores"]
    with np.load(scored_run / "outside" / "prediction.npz") as x, np.load(plugin_run / "outside-twin" /
                                                                         "prediction.npz") as y:
        for key in y.files:  # the plugin gives one train per stimulus; the files' is spread over repetitions
            assert np.array_equal(x[key], y[key]) and f"{key.split('/')[0]}/3" in x.files
    # the two runs rank together, by the same rule, in one table
    assert run_cli(["table", str(scored_run), str(plugin_run)], cwd=tmp_path, data_dir=data_dir).returncode == 0
