"""qsnmc new: a documented skeleton that is discovered, runs and scores out of the box."""
from __future__ import annotations

import pytest

from conftest import read_rows, run_cli
from qsnmc.cli.main import main


@pytest.mark.slow
def test_new_skeleton_runs_and_scores(tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["new", "my-model"]) == 0
    path = tmp_path / "submissions" / "my_model.py"
    text = path.read_text()
    assert "class MyModel(qsnmc.Model)" in text and "param_grid" in text and "def predict" in text
    capsys.readouterr()
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "my-model" in listing and "submission" in listing
    proc = run_cli(["run", "my-model", "poisson", "--challenge", "synthetic-test", "--json", "rows.json", "--quiet"],
                   cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(tmp_path / "rows.json")
    assert rows["my-model"]["status"] == "ok", rows["my-model"]["reason"]
    assert rows["my-model"]["performance"] > 0.1 > rows["poisson"]["performance"]


def test_new_never_overwrites_and_checks_the_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["new", "twice"]) == 0
    before = (tmp_path / "submissions" / "twice.py").read_text()
    (tmp_path / "submissions" / "twice.py").write_text(before + "# my edits\n")
    assert main(["new", "twice"]) == 2 and "exists" in capsys.readouterr().err
    assert (tmp_path / "submissions" / "twice.py").read_text().endswith("# my edits\n")
    assert main(["new", "no spaces!"]) == 2 and "not a valid model name" in capsys.readouterr().err
