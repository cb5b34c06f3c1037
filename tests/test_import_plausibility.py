"""What a new user met importing: unit slips refused in one line, nothing written (ms typed as s in
dt_s, nA labelled pA, Delta typed in s, a threshold that leaves the training windows without spikes);
a wrong folder or file named before "already exists"; the --current-from-protocol hint; one default
--current-tolerance; --dry-run on every importer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qsnmc.cli.main import main
from synthetic import DT_S, simulate_noisy_lif


@pytest.fixture(scope="module")
def cell() -> tuple[np.ndarray, np.ndarray]:
    return simulate_noisy_lif(6.0, 3, seed=5)


def _save(path, cell, *, dt_s=DT_S, current_scale=1.0, current_unit="pA"):
    current, voltage = cell
    np.savez(path, dt_s=np.array(dt_s), current_unit=np.array(current_unit), voltage_unit=np.array("mV"),
             **{"current/A": current * current_scale, "voltage/A": voltage})
    return path


CASES = {
    "ms typed as s": ({"dt_s": 0.5}, [], "dt_s 0.5 s: a sampling rate of 2 Hz is implausible for current clamp; "
                      "expected 1e-05-0.01 s (ms typed as s? 0.1 ms is dt_s = 0.0001)"),
    "nA labelled pA": ({"current_scale": 1e-3}, [], "pA after current_unit 'pA' is implausible (expected "
                       "10-100000 pA): nA or A labelled pA?"),
    "Delta in s": ({}, ["--delta-ms", "0.004"], "--delta-ms 0.004: expected 0.5-50 ms (Delta is in ms"),
    "no training spike": ({}, ["--threshold-mv", "60"], "no spike in any training window (0-4 s of A): check "
                          "--threshold-mv"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unit_slips_are_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys, cell, case):
    saved, options, message = CASES[case]
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    path = _save(tmp_path / "cell.npz", cell, **saved)
    assert main(["data", "import-arrays", str(path), "--train-until", "4", *options]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "data" / "challenges" / "cell").exists()


def test_the_same_cell_with_its_units_right_imports(tmp_path, monkeypatch, capsys, cell):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    path = _save(tmp_path / "cell.npz", cell, current_scale=1e-3, current_unit="nA")
    assert main(["data", "import-arrays", str(path), "--train-until", "4", "--delta-ms", "4"]) == 0
    assert (tmp_path / "data" / "challenges" / "cell" / "manifest.json").is_file()


def test_a_wrong_folder_or_file_is_named_before_the_name_is_refused(tmp_path, monkeypatch, capsys, cell):
    """With a challenge of that name already there, a wrong 2007 folder or a non-NWB file is reported as
    what it is, not as "already exists ... use --force"."""
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    path = _save(tmp_path / "cell.npz", cell)
    for name in ("qsnmc2007a", "cell"):
        assert main(["data", "import-arrays", str(path), "--train-until", "4", "--name", name]) == 0
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "training").mkdir()
    (tmp_path / "cell.nwb").write_text("not an NWB file\n")
    for argv, message in (
        (["import-qsnmc2007", str(tmp_path / "nowhere")], "expected a QSNMC 2007 Challenge A folder with a training/"),
        (["import-qsnmc2007", str(tmp_path / "empty")], "training: no NN-r.voltage / NN-r.spiketimes files"),
        (["import-nwb", str(tmp_path / "cell.nwb"), "--name", "cell"], "cell.nwb: not an NWB file (not HDF5)"),
        (["import-nwb", str(tmp_path / "missing.nwb"), "--name", "cell"], "missing.nwb: no such file"),
    ):
        assert main(["data", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "already exists" not in err, err
    # a good input still meets the name check
    assert main(["data", "import-arrays", str(path), "--train-until", "4", "--name", "cell"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_a_wrong_arrays_file_or_2009_folder_is_named_before_the_name(tmp_path, monkeypatch, capsys, cell):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    path = _save(tmp_path / "cell.npz", cell)
    for name in ("qsnmc2009a", "cell"):
        assert main(["data", "import-arrays", str(path), "--train-until", "4", "--name", name]) == 0
    capsys.readouterr()
    np.save(tmp_path / "one.npy", np.zeros(3))
    for argv, message in (
        (["import-arrays", str(tmp_path / "one.npy"), "--name", "cell"], "a single array, expected an .npz"),
        (["import-arrays", str(tmp_path / "gone.npz"), "--name", "cell"], "gone.npz: no such file"),
        (["import-qsnmc2009", str(tmp_path)], "no current file found (looked for current.txt[.gz]"),
    ):
        assert main(["data", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "already exists" not in err, err


def test_no_current_channel_in_an_abf_points_to_the_protocol(tmp_path, monkeypatch, capsys):
    """An ABF whose current was not recorded: the error says --current-from-protocol, which reads it."""
    pytest.importorskip("neo")
    from conftest import SHARED

    protocol = SHARED / "abf" / "17o05028_ic_steps.abf"  # IN 0 (mV); the current is in the protocol only
    if not protocol.is_file():
        pytest.skip("../shared/abf absent")
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    assert main(["data", "import-neo", str(protocol), "--train-until", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no channel in a current unit" in err
    assert "take it from the protocol with --current-from-protocol" in err


def test_every_importer_has_one_default_current_tolerance(capsys):
    from qsnmc.challenges.recorded import CURRENT_TOLERANCE_PA
    from qsnmc.challenges.repetitions import ABS_TOL_PA

    assert CURRENT_TOLERANCE_PA == ABS_TOL_PA == 2.0
    for command in ("import-nwb", "import-neo"):
        with pytest.raises(SystemExit):
            main(["data", command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert __import__("re").search(r"--current-tolerance PA [^\[\]]*?\(default: 2\)", text), (command, text)


def test_every_importer_has_a_dry_run_that_writes_nothing(tmp_path, monkeypatch, capsys, cell):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    path = _save(tmp_path / "cell.npz", cell)
    runs = [["import-arrays", str(path), "--train-until", "4"]]
    shared_2007 = Path(__file__).resolve().parents[1].parent / "shared" / "qsnmc2007" / "challengeA"
    if (shared_2007 / "training").is_dir():
        runs.append(["import-qsnmc2007", str(shared_2007)])
    for argv in runs:
        assert main(["data", *argv, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "read and split (dry run)" in out and out.rstrip().endswith("dry run: nothing written")
        assert "train window" in out and "written to" not in out
    assert not (tmp_path / "data").exists()
    # a bad split is refused as without --dry-run
    assert main(["data", "import-arrays", str(path), "--train-until", "9", "--dry-run"]) == 2
    assert "--train-until 9 s: leaves no test data" in capsys.readouterr().err
    for command in ("import-qsnmc2007", "import-qsnmc2009", "import-nwb", "import-arrays", "import-neo"):
        with pytest.raises(SystemExit):
            main(["data", command, "--help"])
        assert "--dry-run" in capsys.readouterr().out
