"""qsnmc data import-arrays: the plain .npz format, a baseline run on it, malformed files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import read_rows, run_cli
from qsnmc.challenges.arrays import import_arrays
from qsnmc.challenges.store import load_challenge, sha256_file
from qsnmc.challenges.textdata import DataImportError
from qsnmc.scoring.spikes import spike_times_from_voltage
from synthetic import DT_S, simulate_noisy_lif

DURATION_S = 6.0


@pytest.fixture(scope="module")
def cells() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two stimuli of a noisy LIF (current pA, voltage mV reps x samples), 6 s at 2 kHz, 3 repetitions."""
    return {name: simulate_noisy_lif(DURATION_S, 3, seed=seed) for name, seed in (("A", 5), ("B", 6))}


def arrays_of(cells: dict, *, volts: bool = False) -> dict[str, np.ndarray]:
    """The documented layout: dt_s, units, current/NAME, voltage/NAME."""
    out: dict[str, np.ndarray] = {"dt_s": np.array(DT_S), "current_unit": np.array("nA" if volts else "pA"),
                                  "voltage_unit": np.array("V" if volts else "mV")}
    for name, (current, voltage) in cells.items():
        out[f"current/{name}"] = current / 1e3 if volts else current
        out[f"voltage/{name}"] = voltage / 1e3 if volts else voltage
    return out


def save(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("volts", [False, True], ids=["mV-pA", "V-nA"])
def test_import_splits_and_converts_units(cells, tmp_path, volts):
    path = save(tmp_path / "cell.npz", arrays_of(cells, volts=volts))
    challenge = load_challenge(import_arrays(path, tmp_path / "c", name="cell", train_until_s=4.5))
    assert [s.name for s in challenge.stimuli] == ["A", "B"] and challenge.delta_s == 0.004
    for s in challenge.stimuli:
        current, voltage = cells[s.name]
        spikes = spike_times_from_voltage(voltage, DT_S)
        np.testing.assert_allclose(s.current_pA, current, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(s.train_voltage_mV, voltage[:, :9000], atol=1 / 256)
        assert s.train_window_s == (0.0, 4.5) and s.test_window_s == (4.5, DURATION_S)
        for got, want in zip(s.test_spikes_s, spikes):
            np.testing.assert_allclose(got, want[want >= 4.5], atol=1e-9)
    assert challenge.manifest["provenance"]["source_sha256"] == sha256_file(path)


def test_held_out_stimulus_and_threshold(cells, tmp_path):
    path = save(tmp_path / "cell.npz", arrays_of(cells))
    challenge = load_challenge(import_arrays(path, tmp_path / "c", name="c", test_stimuli=["A"], threshold_mV=-20.0,
                                             delta_ms=2.0))
    a, b = challenge.stimuli
    assert a.train_window_s is None and a.test_window_s == (0.0, DURATION_S)
    assert b.train_window_s == (0.0, DURATION_S) and b.test_window_s is None
    assert challenge.threshold_mV == -20.0 and challenge.delta_s == 0.002
    assert [len(t) for t in a.test_spikes_s] == [t.size for t in spike_times_from_voltage(cells["A"][1], DT_S, -20.0)]


def _drop(key):
    return lambda a: a.pop(key)


def _set(key, value):
    return lambda a: a.__setitem__(key, value)


MALFORMED = {
    "missing dt_s": (_drop("dt_s"), r"bad\.npz: missing dt_s"),
    "missing current unit": (_drop("current_unit"), r"bad\.npz: missing current_unit \(one of pA, nA, A\)"),
    "unknown voltage unit": (_set("voltage_unit", np.array("uV")), r"bad\.npz: voltage_unit 'uV': expected one of mV, V"),
    "text instead of numbers": (_set("current/A", np.array(["a"] * 12000)), r"current/A: data of type <U1, expected numbers"),
    "mismatched lengths": (lambda a: a.__setitem__("current/B", a["current/B"][:-5]),
                           r"stimulus B: mismatched lengths: current/B has 11995 samples, voltage/B 12000"),
    "one-dimensional voltage": (lambda a: a.__setitem__("voltage/A", a["voltage/A"][0]),
                                r"voltage/A: shape \(12000,\), expected \(n_repetitions, n_samples\)"),
    "missing value": (lambda a: a["voltage/B"].__setitem__((1, 50), np.nan), r"voltage/B: missing \(NaN\)"),
    "missing voltage": (_drop("voltage/B"), r"stimulus B: missing voltage/B"),
    "stray key": (_set("spikes", np.zeros(3)), r"unexpected key 'spikes'"),
    "volts labelled mV": (lambda a: [a.__setitem__(k, a[k] / 1e3) for k in ("voltage/A", "voltage/B")],
                          r"voltage/A \(mV\): voltage amplitude .* implausible for mV \(volts instead of mV\?\)"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_arrays_are_refused_and_nothing_is_written(cells, tmp_path, case):
    edit, message = MALFORMED[case]
    arrays = {k: np.array(v, copy=True) for k, v in arrays_of(cells).items()}
    edit(arrays)
    path = save(tmp_path / "bad.npz", arrays)
    with pytest.raises(DataImportError, match=message):
        import_arrays(path, tmp_path / "out" / "bad", name="bad", train_until_s=4.0)
    assert not (tmp_path / "out" / "bad").exists()


@pytest.mark.parametrize("content", [b"not a zip at all", None], ids=["text", "truncated"])
def test_unreadable_file_is_refused(cells, tmp_path, content):
    path = tmp_path / "bad.npz"
    if content is None:
        data = save(tmp_path / "whole.npz", arrays_of(cells)).read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(DataImportError, match=r"bad\.npz: (not a readable|not a|damaged) \.npz") as caught:
        import_arrays(path, tmp_path / "c", name="c", train_until_s=4.0)
    assert "pickle" not in str(caught.value)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("options, message", [
    ({}, r"^no split chosen"),
    ({"test_stimuli": ["A", "B"]}, r"^--test-stimuli A,B: holds out every stimulus, which leaves no training data"),
    ({"train_until_s": 7.0}, r"^--train-until 7 s: leaves no test data in stimulus A"),
    ({"train_until_s": 4.0, "r_floor": 1.01}, r"^--r-floor 1.01: no stimulus has R >= 1.01"),
])
def test_split_without_training_or_test_data_is_refused(cells, tmp_path, options, message):
    path = save(tmp_path / "cell.npz", arrays_of(cells))
    with pytest.raises(DataImportError, match=message):
        import_arrays(path, tmp_path / "c", name="c", **options)
    assert not (tmp_path / "c").exists()


@pytest.mark.slow  # a sandboxed lif run: about 6-9 s
def test_cli_import_then_a_baseline_run_names_the_source(cells, tmp_path):
    path = save(tmp_path / "my cell.npz", arrays_of(cells))
    data = tmp_path / "data"
    proc = run_cli(["data", "import-arrays", str(path), "--test-stimuli", "A,B"], cwd=tmp_path, data_dir=data)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: --test-stimuli A,B: holds out every stimulus")
    assert not (data / "challenges" / "my-cell").exists()
    proc = run_cli(["data", "import-arrays", str(path), "--train-until", "4", "--name", "mine"], cwd=tmp_path,
                   data_dir=data)
    assert proc.returncode == 0, proc.stderr
    assert "source: " in proc.stdout and "spikes: upward crossings of 0 mV" in proc.stdout
    proc = run_cli(["run", "lif", "--challenge", "mine", "--quiet", "--runs-dir", str(tmp_path / "runs"),
                    "--json", "rows.json"], cwd=tmp_path, data_dir=data, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = read_rows(tmp_path / "rows.json")["lif"]
    assert row["status"] == "ok"
    run = json.loads(next((tmp_path / "runs").glob("*/run.json")).read_text())
    assert run["challenge_source"] == {"file": str(path.resolve()), "sha256": sha256_file(path)}
