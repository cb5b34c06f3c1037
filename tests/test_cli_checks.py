"""Commands check their whole input before any work, in one line naming what is wrong and
what is valid, and exit with documented statuses (issue 25's table, row by row)."""
from __future__ import annotations

import importlib
import json
import shutil

import numpy as np
import pytest

from conftest import FIXTURE_SUBMISSIONS, read_rows, run_cli
from qsnmc.challenges.datadir import available_challenges
from qsnmc.cli.checks import EXIT_NONE_SCORED, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, run_status
from qsnmc.harness.discovery import discover_models
from qsnmc.settings import schema_of_factory

cli = importlib.import_module("qsnmc.cli.main")  # the module (qsnmc.cli.main the attribute is its main())

SETTINGS_PROBE = '''
from dataclasses import dataclass
import numpy as np
import qsnmc


@dataclass(frozen=True)
class ProbeSettings:
    width: int = qsnmc.setting(3, "spikes per second of prediction (Hz)", min=1, max=50)
    label: str = qsnmc.setting("a", "a name")


class WithSettings(qsnmc.Model):
    name = "with-settings"
    Settings = ProbeSettings
    def fit(self, train):
        return {"width": self.settings.width}
    def predict(self, stimulus):
        return np.zeros(0)


class PlainKeywords:
    name = "plain-keywords"
    def __init__(self, seed=0, budget=1.0, gain=2.5):
        self.gain = gain
    def fit(self, train):
        return {"gain": self.gain}
    def predict(self, stimulus):
        return np.zeros(0)


class AnyKeywords:
    name = "any-keywords"
    def __init__(self, seed=0, budget=1.0, **anything):
        self.anything = anything
    def fit(self, train):
        return {"anything": self.anything}
    def predict(self, stimulus):
        return np.zeros(0)


@qsnmc.hookimpl
def qsnmc_register_models():
    return [WithSettings, PlainKeywords, AnyKeywords]
'''

GRID_PROBE = '''
import numpy as np
import qsnmc


class Picky(qsnmc.Model):
    name = "picky"
    param_grid = {"x": [1, 2]}
    def __init__(self, seed=0, budget=1.0, x=1):
        super().__init__(seed, budget)
        self.x = x
    def fit(self, train):
        if self.x == 2:
            raise RuntimeError("x = 2 fails on purpose")
    def predict(self, stimulus):
        lo, hi = stimulus.window_s
        return np.arange(lo + 0.05, hi, 0.1)


class Hopeless(Picky):
    name = "hopeless"
    param_grid = {"x": [2]}


@qsnmc.hookimpl
def qsnmc_register_models():
    return [Picky, Hopeless]
'''


@pytest.fixture()
def work(tmp_path, data_dir, monkeypatch):
    """A working folder with an empty submissions/, the synthetic challenges as the data folder."""
    (tmp_path / "submissions").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QSNMC_DATA_DIR", str(data_dir))
    return tmp_path


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """A submissions folder with the settings probes, and its real discovery report (made once)."""
    subs = tmp_path_factory.mktemp("probes") / "submissions"
    subs.mkdir()
    (subs / "settings_probe.py").write_text(SETTINGS_PROBE)
    return subs, discover_models(subs)


def _error(err: str) -> str:
    """The one line of a refusal (after the bubblewrap warning, printed where bwrap is missing)."""
    lines = [line for line in err.splitlines() if not line.startswith("WARNING: bubblewrap")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _nothing_started(work) -> None:
    assert not (work / "runs").exists(), list((work / "runs").iterdir())


# --- `qsnmc run lif --param nonsense=1` ----------------------------------------------------------------
def test_unknown_param_is_refused_before_any_work_naming_the_settings(work, data_dir):
    from qsnmc_plugins.baselines import LeakyIntegrateAndFire

    proc = run_cli(["run", "lif", "--param", "nonsense=1", "--challenge", "synthetic-test"], cwd=work,
                   data_dir=data_dir)
    assert proc.returncode == EXIT_USAGE
    err = _error(proc.stderr)
    assert err.startswith("qsnmc run: --param: lif has no setting 'nonsense'; its settings: ")
    for name, spec in schema_of_factory(LeakyIntegrateAndFire).items():
        assert f"{name} ({spec['type']}, default {spec['default']!r})" in err
    assert proc.stdout == ""
    _nothing_started(work)


@pytest.mark.parametrize("model, param, message", [
    ("with-settings", "nonsense=1", "with-settings has no setting 'nonsense'; its settings: width (int, default 3), "
                                    "label (str, default 'a')"),
    ("with-settings", "width=abc", "with-settings: setting 'width' must be an integer, got 'abc'"),
    ("with-settings", "width=0", "with-settings: setting 'width' must be at least 1, got 0"),
    ("with-settings", "width=51", "with-settings: setting 'width' must be at most 50, got 51"),
    ("plain-keywords", "nonsense=1",
     "plain-keywords has no setting 'nonsense'; its settings: gain (float, default 2.5)"),
    ("plain-keywords", "gain=true", "plain-keywords: setting 'gain' must be a number, got True"),
])
def test_param_keys_and_values_are_checked_against_the_declared_settings(work, probes, monkeypatch, capsys,
                                                                          model, param, message):
    subs, entries = probes
    monkeypatch.setattr(cli, "discover_models", lambda _: entries)  # the real report, made once for the module
    argv = ["run", model, "--param", param, "--submissions", str(subs), "--challenge", "synthetic-test"]
    assert cli.main(argv) == EXIT_USAGE
    assert _error(capsys.readouterr().err) == f"qsnmc run: --param: {message}"
    _nothing_started(work)


@pytest.mark.slow  # a sandboxed run of a trivial model
def test_a_model_taking_any_keywords_gets_params_unchecked(work, probes, data_dir):
    subs, _ = probes
    proc = run_cli(["run", "any-keywords", "--param", "whatever=[1, 2]", "--submissions", str(subs), "--challenge",
                    "synthetic-test", "--quiet"], cwd=work, data_dir=data_dir)
    assert proc.returncode == EXIT_OK, proc.stderr
    record = json.loads((work / "runs" / (work / "runs" / "LATEST").read_text().strip() / "any-keywords" /
                         "record.json").read_text())
    assert record["fit_record"] == {"anything": {"whatever": [1, 2]}}


def test_unknown_model_lists_the_known_ones(work, probes, monkeypatch, capsys):
    subs, entries = probes
    monkeypatch.setattr(cli, "discover_models", lambda _: entries)
    assert cli.main(["run", "nosuch", "--submissions", str(subs), "--challenge", "synthetic-test"]) == EXIT_USAGE
    assert _error(capsys.readouterr().err) == (f"qsnmc run: unknown model(s) nosuch; known: "
                                               f"{', '.join(sorted(e.name for e in entries))}")
    _nothing_started(work)


# --- numbers, paths, challenge names: refused before discovery ------------------------------------------
def _no_discovery(*_):
    raise AssertionError("discovery started before the input was checked")


@pytest.mark.parametrize("argv, message", [
    (["--budget", "0"], "--budget 0: expected a number > 0 (compute scale, 1 = each model's default fit)"),
    (["--budget", "nan"], "--budget nan: expected a number > 0"),
    (["--timeout", "-5"], "--timeout -5: expected a number > 0 (seconds per model)"),
    (["--memory-limit", "0"], "--memory-limit 0: expected a number > 0 (MB per model)"),
    (["--challenge", "nosuch"], "--challenge nosuch: no such challenge"),
    (["--submissions", "missing-folder"], "--submissions missing-folder: does not exist; expected a folder"),
    (["--runs-dir", "a-file/runs"], "--runs-dir a-file/runs: "),
])
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_bad_numbers_paths_and_challenges_are_refused_before_discovery(work, monkeypatch, capsys, command, argv,
                                                                       message):
    (work / "a-file").write_text("not a folder")
    monkeypatch.setattr(cli, "discover_models", _no_discovery)
    assert cli.main([command, "lif", *argv]) == EXIT_USAGE
    err = _error(capsys.readouterr().err)
    assert err.startswith(f"qsnmc {command}: {message}"), err
    if "--runs-dir" in argv:
        assert err.endswith("a-file is a file, not a folder; expected a folder to write runs into")
    if "--challenge" in argv:  # the message lists the challenges that exist
        assert err.endswith(f"challenges: {', '.join(available_challenges())} (import one with qsnmc data)")
        assert "synthetic-test" in err
    _nothing_started(work)


@pytest.mark.parametrize("argv, message", [
    (["--holdout", "0"], "--holdout 0: expected a number in (0, 1) (fraction of each training window held out)"),
    (["--holdout", "1"], "--holdout 1: expected a number in (0, 1)"),
    (["--r-floor", "-0.1"], "--r-floor -0.1: expected a number in [0, 1] (least reliability R of a scored held-out "
                            "part)"),
    (["--r-floor", "1.5"], "--r-floor 1.5: expected a number in [0, 1]"),
])
def test_sweep_fractions_are_checked(work, monkeypatch, capsys, argv, message):
    monkeypatch.setattr(cli, "discover_models", _no_discovery)
    assert cli.main(["sweep", "lif", "--challenge", "synthetic-test", *argv]) == EXIT_USAGE
    assert _error(capsys.readouterr().err).startswith(f"qsnmc sweep: {message}")
    _nothing_started(work)


def test_list_refuses_a_missing_submissions_folder(work, monkeypatch, capsys):
    monkeypatch.setattr(cli, "discover_models", _no_discovery)
    assert cli.main(["list", "--submissions", "nope"]) == EXIT_USAGE
    assert _error(capsys.readouterr().err).startswith("qsnmc list: --submissions nope: does not exist")


# --- `qsnmc sweep lif --split stimulus` on one stimulus -----------------------------------------------------
def test_stimulus_split_on_one_stimulus_says_use_split_time(work, monkeypatch, capsys):
    monkeypatch.setattr(cli, "discover_models", _no_discovery)
    assert cli.main(["sweep", "lif", "--split", "stimulus", "--challenge", "synthetic-test"]) == EXIT_USAGE
    assert _error(capsys.readouterr().err) == (
        "qsnmc sweep: --split stimulus leaves each training stimulus out in turn and needs at least 2; "
        "challenge 'synthetic-test' has 1: use --split time")
    _nothing_started(work)


# --- `qsnmc new lif` ---------------------------------------------------------------------------------------
def test_new_refuses_the_name_of_a_discovered_model(work, probes, monkeypatch, capsys):
    subs, entries = probes
    monkeypatch.setattr(cli, "discover_models", lambda _: entries)
    for name, source in [("lif", "built-in qsnmc_plugins.baselines"), ("with-settings", "submission ")]:
        assert cli.main(["new", name]) == EXIT_USAGE
        err = _error(capsys.readouterr().err)
        assert err.startswith(f"qsnmc new: {name!r} is already the name of a model ({source}") and \
            err.endswith("choose another name (qsnmc list shows the names in use)")
    assert list((work / "submissions").iterdir()) == []


# --- `qsnmc data import-arrays` on a file that is not an .npz ------------------------------------------------
@pytest.mark.parametrize("content", [b"myhost\n", None], ids=["text", "npy"])
def test_import_arrays_of_a_non_npz_file_says_so_without_inviting_to_unpickle(work, capsys, content):
    path = work / "hostname"
    if content is None:
        np.save(work / "one.npy", np.zeros(3))
        path = work / "one.npy"
    else:
        path.write_bytes(content)
    assert cli.main(["data", "import-arrays", str(path), "--train-until", "1"]) == 2
    err = _error(capsys.readouterr().err)
    assert "pickle" not in err
    if content is None:
        assert err.endswith("one.npy: a single array, expected an .npz of named arrays (see the README)")
    else:
        assert err == f"error: {path.resolve()}: not a .npz file (expected a zip archive of named arrays written " \
                      "by numpy.savez; see the README)"
    assert not (work / "data").exists()


# --- exit statuses ----------------------------------------------------------------------------------------
def test_run_status_of_finished_rows():
    ok, failed = {"status": "ok"}, {"status": "failed"}
    assert run_status([ok, ok]) == EXIT_OK == 0
    assert run_status([ok, failed]) == EXIT_SOME_FAILED == 1
    assert run_status([failed, failed]) == run_status([]) == EXIT_NONE_SCORED == 3


def test_help_documents_the_exit_statuses(capsys):
    for argv in (["run", "--help"], ["sweep", "--help"], ["data", "import-arrays", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "Exit status: 0 " in text and "2 usage or input error" in text or "2 bad input" in text


def test_a_run_where_every_row_fails_exits_3(work, data_dir):
    subs = work / "crashers"
    subs.mkdir()
    shutil.copy(FIXTURE_SUBMISSIONS / "crash.py", subs)
    proc = run_cli(["run", "crash", "--submissions", str(subs), "--challenge", "synthetic-test", "--quiet",
                    "--json", "rows.json"], cwd=work, data_dir=data_dir)
    assert proc.returncode == EXIT_NONE_SCORED, proc.stderr
    assert read_rows(work / "rows.json")["crash"]["status"] == "failed"


@pytest.mark.slow  # three sandboxed fits in two sweeps
def test_sweep_exit_status_counts_failed_settings(work, data_dir):
    (work / "submissions" / "grid_probe.py").write_text(GRID_PROBE)
    proc = run_cli(["sweep", "picky", "--challenge", "synthetic-test", "--quiet"], cwd=work, data_dir=data_dir)
    assert proc.returncode == EXIT_SOME_FAILED, proc.stderr
    assert "x = 2 fails on purpose" in proc.stdout and "Best: {'x': 1}" in proc.stdout
    proc = run_cli(["sweep", "hopeless", "--challenge", "synthetic-test", "--quiet"], cwd=work, data_dir=data_dir)
    assert proc.returncode == EXIT_NONE_SCORED, proc.stderr
    assert "No setting could be scored." in proc.stdout
