"""Finding plugins: built-ins, entry points, submission files; broken ones become failed rows."""
from __future__ import annotations

from pathlib import Path

from conftest import FIXTURE_SUBMISSIONS, PROJECT, read_rows, run_cli
from qsnmc import hookspecs
from qsnmc.harness.discovery import discover_models
from qsnmc.harness.plugins import find_sources


def test_list_shows_builtins_and_submissions_and_failures(tmp_path):
    proc = run_cli(["list", "--submissions", str(FIXTURE_SUBMISSIONS)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for name in ("lif", "crash", "cheat", "returns-nan"):
        assert name in out
    assert "built-in qsnmc_plugins.baselines" in out
    assert "ModuleNotFoundError" in out  # broken_import.py
    assert "unknown hook 'qsnmc_register_model'" in out  # misspelt_hook.py, caught by check_pending()


def test_name_clash_names_both_sources(tmp_path):
    entries = {e.name: e for e in discover_models(FIXTURE_SUBMISSIONS)}
    err = entries["poisson"].error
    assert err and "built-in qsnmc_plugins.baselines" in err and "clash.py" in err
    assert entries["lif"].ok  # the rest is unaffected


def test_clashing_model_is_a_failed_row_not_a_crash(tmp_path, data_dir):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "clash.py").write_text((FIXTURE_SUBMISSIONS / "clash.py").read_text())
    proc = run_cli(["run", "poisson", "lif", "--challenge", "synthetic-test", "--submissions", str(subs),
                    "--json", "rows.json", "--budget", "0.2"], cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 1, proc.stderr  # some rows failed
    rows = read_rows(tmp_path / "rows.json")
    assert rows["poisson"]["status"] == "failed" and "registered by" in rows["poisson"]["reason"]
    assert rows["lif"]["status"] == "ok"


def test_hanging_import_is_timed_out_and_discovery_goes_on(tmp_path):
    # the limit covers importing every built-in too: 15 s leaves room on a busy machine (or under pytest -n)
    proc = run_cli(["list", "--submissions", str(Path(__file__).parent / "fixtures" / "slow_import")],
                   cwd=tmp_path, env={"QSNMC_DISCOVERY_TIMEOUT": "15"})
    assert proc.returncode == 0, proc.stderr
    assert "fine" in proc.stdout and "one spike per second" in proc.stdout
    failed = [line for line in proc.stdout.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("| slow_import ") and "stopped the worker" in failed[0]
    assert "timeout" in failed[0]


def test_sources_are_found_without_running_plugin_code(tmp_path):
    marker = tmp_path / "ran"
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "sidefx.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (subs / "_private.py").write_text("raise SystemExit('must not be loaded')\n")
    sources = find_sources(subs)
    assert [Path(s.target).name for s in sources if s.kind == "submission"] == ["sidefx.py"]
    assert not marker.exists()
    assert {s.target for s in sources if s.kind == "builtin"} >= {"qsnmc_plugins.baselines"}


def test_every_hook_has_a_test():
    """Datasette's rule: a hookspec with no test fails the suite."""
    hooks = [n for n, f in vars(hookspecs).items() if callable(f) and n.startswith("qsnmc_")]
    assert hooks
    test_text = "".join(p.read_text() for p in (PROJECT / "tests").rglob("*.py") if p.name != "test_discovery.py")
    for hook in hooks:
        assert hook in test_text, f"hook {hook} has no test"


def test_every_builtin_plugin_has_an_entry_point():
    """A package under qsnmc_plugins/ that registers models has an entry point; one that does
    not (shared code, e.g. ``hazard``) has none, and every entry point names a package."""
    pyproject = (PROJECT / "pyproject.toml").read_text()
    plugins = []
    for pkg in (PROJECT / "qsnmc_plugins").iterdir():
        if pkg.is_dir() and (pkg / "__init__.py").exists():
            line = f'{pkg.name} = "qsnmc_plugins.{pkg.name}"'
            if "def qsnmc_register_models" in (pkg / "__init__.py").read_text():
                plugins.append(pkg.name)
                assert line in pyproject, f"no entry point for {pkg.name}"
            else:
                assert line not in pyproject, f"{pkg.name} registers no model but has an entry point"
    assert "hazard" not in plugins and {"gru", "gif", "adex"} <= set(plugins)
