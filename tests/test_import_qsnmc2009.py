"""The QSNMC 2009 Challenge A/B importer on small files written here in the competition's layout
(``current.txt``: one pA value per line at 10 kHz; ``voltage_allrep.txt``: one mV column per
repetition), well-formed and malformed, and the ``qsnmc data import-qsnmc2009`` command.
The real 2009 files are not in ``../shared/``."""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qsnmc import load_challenge
from qsnmc.cli.main import main as cli_main
from qsnmc.challenges.qsnmc2009 import import_qsnmc2009
from qsnmc.challenges.store import sha256_file
from qsnmc.challenges.textdata import DataImportError

DT = 1e-4
CURRENT_S, RECORDED_S = 5.0, 4.0  # the real files: 60 s of current, 38-39 s of voltage
N_REPS = 13
WINDOWS = {"train_window_s": (0.0, 3.0), "test_window_s": (3.0, 4.0)}
SPIKES_S = np.arange(0.05, RECORDED_S - 0.01, 0.1)  # 40 spikes, 4 ms wide, reliable across repetitions


def _voltage(rng: np.random.Generator, n_reps: int) -> np.ndarray:
    n = int(round(RECORDED_S / DT))
    v = -65 + rng.normal(0, 0.5, (n_reps, n))
    for r in range(n_reps):
        for t in SPIKES_S + rng.normal(0, 0.0005, SPIKES_S.size):
            k = int(t / DT)
            v[r, k : k + 10] = 25.0  # above 0 mV for 1 ms
    return v


def _write_files(folder: Path, n_reps: int = N_REPS, scale: float = 1.0) -> None:
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    current = rng.normal(100, 300, int(round(CURRENT_S / DT))) * scale
    np.savetxt(folder / "current.txt", current, fmt="%.3f")
    np.savetxt(folder / "voltage_allrep.txt", _voltage(rng, n_reps).T, fmt="%.4f", delimiter="\t")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("qsnmc2009") / "Challenge_A"
    _write_files(folder)
    return folder


@pytest.fixture
def source(template, tmp_path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "src"))


def _edit_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = text
    path.write_text("".join(lines))


def test_import_builds_the_substitute_split(source, tmp_path):
    dest = import_qsnmc2009(source, tmp_path / "out" / "c09", **WINDOWS)
    challenge = load_challenge(dest)
    assert challenge.name == "qsnmc2009a" and challenge.delta_s == 0.004
    assert "substitute" in challenge.description.lower() and "not the competition's test" in challenge.description
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["provenance"]["split"] == "substitute"
    # two source files, one digest: the sha256 of their sha256sum listing, in sorted path order
    listing = "".join(f"{sha256_file(source / n)}  {n}\n" for n in ("current.txt", "voltage_allrep.txt"))
    assert challenge.source() == {"file": "current.txt, voltage_allrep.txt",
                                  "sha256": hashlib.sha256(listing.encode()).hexdigest()}
    train = challenge.training_data()
    assert train.window_s == (0.0, 3.0) and train.voltage_mV.shape == (N_REPS, 30000)
    assert train.current_pA.shape == (50000,)  # the whole current, as published
    raw = np.loadtxt(source / "voltage_allrep.txt")
    np.testing.assert_allclose(train.voltage_mV[4], raw[:30000, 4], atol=0.002)
    assert [len(t) for t in train.spike_times_s] == [30] * N_REPS
    (stim,) = challenge.test_stimuli()
    assert stim.window_s == (3.0, 4.0) and stim.n_repetitions == N_REPS
    hidden = challenge.test_recordings(stim.name)
    assert [len(t) for t in hidden] == [10] * N_REPS
    assert all(np.all((t >= 3.0) & (t < 4.0)) for t in hidden)
    assert 0.5 < challenge.reliability(stim.name) <= 1
    # no test-window voltage or spikes in what models see
    public = np.load(dest / "public.npz")
    assert public["A.voltage_counts"].shape == (N_REPS, 30000)
    assert not [k for k in public.files if "test" in k]


def test_challenge_B_and_gzip(tmp_path):
    src = tmp_path / "B"
    _write_files(src, n_reps=9)
    for name in ("current.txt", "voltage_allrep.txt"):
        (src / f"{name}.gz").write_bytes(gzip.compress((src / name).read_bytes(), compresslevel=1))
        (src / name).unlink()
    challenge = load_challenge(import_qsnmc2009(src, tmp_path / "b", challenge="B", **WINDOWS))
    assert challenge.name == "qsnmc2009b" and challenge.stimuli[0].n_repetitions == 9


def _assert_nothing_written(dest: Path) -> None:
    assert not dest.exists() and not dest.parent.exists()


def _twelve_columns(src: Path) -> None:
    table = np.loadtxt(src / "voltage_allrep.txt")
    np.savetxt(src / "voltage_allrep.txt", table[:, :12], fmt="%.4f")


def _short_row(src: Path) -> None:
    _edit_line(src / "voltage_allrep.txt", 1500, " ".join(["-65.0"] * 12) + "\n")


def _non_numeric_current(src: Path) -> None:
    _edit_line(src / "current.txt", 777, "abc\n")


def _nan_voltage(src: Path) -> None:
    _edit_line(src / "voltage_allrep.txt", 2024, " ".join(["-65.0"] * 6 + ["NaN"] + ["-65.0"] * 6) + "\n")


def _empty_field(src: Path) -> None:
    lines = (src / "voltage_allrep.txt").read_text().splitlines()
    lines = [line.replace("\t", ",") for line in lines]
    lines[9] = ",".join(["-65.0"] * 3 + [""] + ["-65.0"] * 9)
    (src / "voltage_allrep.txt").unlink()
    (src / "voltage_allrep.csv").write_text("\n".join(lines) + "\n")


def _truncated_current(src: Path) -> None:
    lines = (src / "current.txt").read_text().splitlines(keepends=True)
    (src / "current.txt").write_text("".join(lines[:35000]))


def _truncated_gzip(src: Path) -> None:
    data = gzip.compress((src / "voltage_allrep.txt").read_bytes(), compresslevel=1)
    (src / "voltage_allrep.txt").unlink()
    (src / "voltage_allrep.txt.gz").write_bytes(data[: len(data) // 2])


def _current_in_nA(src: Path) -> None:
    np.savetxt(src / "current.txt", np.loadtxt(src / "current.txt") / 1000, fmt="%.6f")


def _no_voltage(src: Path) -> None:
    (src / "voltage_allrep.txt").unlink()


MALFORMED = {
    "12 repetitions": (_twelve_columns, {}, r"voltage_allrep\.txt: line 1: expected 13 numeric columns, got 12"),
    "short row": (_short_row, {}, r"voltage_allrep\.txt: line 1500: expected 13 numeric columns, got 12"),
    "non-numeric": (_non_numeric_current, {}, r"current\.txt: line 777: expected 1 numeric column, got 'abc'"),
    "nan": (_nan_voltage, {}, r"line 2024: expected 13 numeric columns, got a missing value 'NaN' \(column 7\)"),
    "empty csv field": (_empty_field, {}, r"voltage_allrep\.csv: line 10: .*column 4 is empty \(missing value\)"),
    "truncated current": (_truncated_current, {}, r"40000 rows of voltage but current\.txt has only 35000 samples"),
    "truncated gzip": (_truncated_gzip, {}, r"voltage_allrep\.txt\.gz: truncated or corrupt gzip"),
    "current in nA": (_current_in_nA, {}, r'implausible for pA .*current_unit="nA"'),
    "missing voltage": (_no_voltage, {}, r"no voltage file found"),
    "challenge B on A's files": (lambda s: None, {"challenge": "B"}, r"expected 9 numeric columns, got 13"),
    "challenge C": (lambda s: None, {"challenge": "C"}, r"only A and B are supported"),
    "test past the recording": (
        lambda s: None, {"test_window_s": (3.0, 4.5)}, r"voltage recorded for 0-4 s only; the test window"
    ),
    "overlapping windows": (lambda s: None, {"test_window_s": (2.5, 4.0)}, r"overlaps the training window"),
    "off-grid window": (lambda s: None, {"train_window_s": (0.0, 2.99995)}, r"not on the 0.1 ms sample grid"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_refused_and_nothing_is_written(source, tmp_path, case):
    mutate, options, message = MALFORMED[case]
    mutate(source)
    dest = tmp_path / "out" / "c09"
    with pytest.raises(DataImportError, match=message):
        import_qsnmc2009(source, dest, **(WINDOWS | options))
    _assert_nothing_written(dest)


def test_current_unit_nA_is_converted(source, tmp_path):
    reference = load_challenge(import_qsnmc2009(source, tmp_path / "pA", **WINDOWS)).stimuli[0].current_pA
    _current_in_nA(source)
    converted = load_challenge(import_qsnmc2009(source, tmp_path / "nA", current_unit="nA", **WINDOWS))
    np.testing.assert_allclose(converted.stimuli[0].current_pA, reference, atol=0.01)


def _cli(argv: list[str]) -> int:
    """The real ``qsnmc`` command line, in this process."""
    return cli_main(argv)


def test_cli_import_prints_the_substitute_split(source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    # the default windows (train 0-30 s, test 30-38 s) do not fit a 4 s recording
    assert _cli(["data", "import-qsnmc2009", str(source)]) == 2
    assert "voltage recorded for 0-4 s only" in capsys.readouterr().err
    assert not (tmp_path / "data" / "challenges" / "qsnmc2009a").exists()
    argv = ["data", "import-qsnmc2009", str(source), "--train-window", "0", "3", "--test-window", "3", "4"]
    assert _cli(argv) == 0
    out = capsys.readouterr().out
    assert "SUBSTITUTE test 3-4 s" in out and "Delta = 4 ms" in out
    assert (tmp_path / "data" / "challenges" / "qsnmc2009a" / "manifest.json").is_file()
    assert _cli(argv) == 2 and "--force" in capsys.readouterr().err
    assert _cli(argv + ["--force", "--name", "other"]) == 0
    assert _cli(argv + ["--current-unit", "nA", "--force"]) == 0  # stated units are trusted
    with pytest.raises(SystemExit) as refused:  # --challenge names a challenge, not a letter: --letter
        _cli(argv + ["--challenge", "A"])
    assert refused.value.code == 2
