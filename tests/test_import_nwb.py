"""qsnmc data import-nwb / export-nwb: NWB files written here with pynwb, malformed ones, and the embedded round trip."""
from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")
from pynwb import NWBHDF5IO, NWBFile  # noqa: E402
from pynwb.icephys import (  # noqa: E402
    CurrentClampSeries, CurrentClampStimulusSeries, VoltageClampSeries, VoltageClampStimulusSeries,
)

from conftest import read_rows, run_cli  # noqa: E402
from qsnmc.challenges.nwb import export_nwb, import_nwb  # noqa: E402
from qsnmc.challenges.store import load_challenge  # noqa: E402
from qsnmc.challenges.textdata import DataImportError  # noqa: E402
from qsnmc.cli.main import main as cli_main  # noqa: E402
from qsnmc.scoring.spikes import spike_times_from_voltage  # noqa: E402
from synthetic import DT_S, simulate_noisy_lif  # noqa: E402

DURATION_S = 6.0
N_REPS = 3


@pytest.fixture(scope="module")
def cells() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two stimuli of a noisy LIF (current pA, voltage mV reps x samples), 6 s at 2 kHz, 3 repetitions."""
    return {name: simulate_noisy_lif(DURATION_S, N_REPS, seed=seed) for name, seed in (("A", 3), ("B", 4))}


def write_nwb(path: Path, cells: dict, *, tables: bool = True, si_units: bool = True,
              response_type=CurrentClampSeries, stimulus_type=CurrentClampStimulusSeries) -> Path:
    """An NWB file of one sweep per repetition; data in V/A (conversion 1) or mV/pA (conversion 1e-3 / 1e-12)."""
    nwbfile = NWBFile("test cell", "test-id", datetime(2026, 1, 1, tzinfo=timezone.utc))
    device = nwbfile.create_device(name="amp")
    electrode = nwbfile.create_icephys_electrode(name="elec", description="patch", device=device)
    v_scale, i_scale = (1e-3, 1e-12) if si_units else (1.0, 1.0)
    v_conv, i_conv = (1.0, 1.0) if si_units else (1e-3, 1e-12)
    number = 0
    for name, (current, voltage) in cells.items():
        simultaneous = []
        for r in range(voltage.shape[0]):
            extra = {} if response_type is CurrentClampSeries else {"capacitance_fast": 0.0, "capacitance_slow": 0.0,
                                                                      "resistance_comp_bandwidth": 0.0,
                                                                      "resistance_comp_correction": 0.0,
                                                                      "resistance_comp_prediction": 0.0,
                                                                      "whole_cell_capacitance_comp": 0.0,
                                                                      "whole_cell_series_resistance_comp": 0.0}
            stim = stimulus_type(name=f"stim{number}", data=current * i_scale, electrode=electrode, gain=1.0,
                                 rate=1 / DT_S, conversion=i_conv, sweep_number=np.uint32(number))
            resp = response_type(name=f"sweep{number}", data=voltage[r] * v_scale, electrode=electrode, gain=1.0,
                                 rate=1 / DT_S, conversion=v_conv, sweep_number=np.uint32(number), **extra)
            nwbfile.add_stimulus(stim)
            nwbfile.add_acquisition(resp)
            if tables:
                row = nwbfile.add_intracellular_recording(electrode=electrode, stimulus=stim, response=resp)
                simultaneous.append(nwbfile.add_icephys_simultaneous_recording(recordings=[row]))
            number += 1
        if tables:
            nwbfile.add_icephys_sequential_recording(simultaneous_recordings=simultaneous, stimulus_type=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwbfile)
    return path


def _assert_matches(challenge, cells, train_until_s: float) -> None:
    n_train = int(round(train_until_s / DT_S))
    for s in challenge.stimuli:
        current, voltage = cells[s.name]
        np.testing.assert_allclose(s.current_pA, current, rtol=1e-6, atol=1e-6)  # stored as float32 pA
        np.testing.assert_allclose(s.train_voltage_mV, voltage[:, :n_train], atol=1 / 256)  # int16 of 1/256 mV
        spikes = spike_times_from_voltage(voltage, DT_S)
        for got, want in zip(s.train_spikes_s + (s.test_spikes_s or []), [t[t < train_until_s] for t in spikes]
                             + ([t[t >= train_until_s] for t in spikes] if s.test_spikes_s else [])):
            np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("si_units", [True, False], ids=["V-A", "mV-pA"])
def test_import_with_icephys_tables_in_either_units(cells, tmp_path, si_units):
    path = write_nwb(tmp_path / "cell.nwb", cells, si_units=si_units)
    challenge = load_challenge(import_nwb(path, tmp_path / "c", name="cell", train_until_s=4.0))
    assert [s.name for s in challenge.stimuli] == ["A", "B"]
    assert all(s.n_repetitions == N_REPS and s.test_window_s == (4.0, DURATION_S) for s in challenge.stimuli)
    assert challenge.stimuli[0].dt_s == DT_S and challenge.delta_s == 0.004
    _assert_matches(challenge, cells, 4.0)
    provenance = challenge.manifest["provenance"]
    assert provenance["source_file"] == str(path) and len(provenance["source_sha256"]) == 64
    assert challenge.source()["file"] == str(path)


def test_without_tables_the_user_names_the_repetitions(cells, tmp_path):
    path = write_nwb(tmp_path / "flat.nwb", cells, tables=False)
    with pytest.raises(DataImportError, match=r"flat\.nwb: no icephys tables .*--stimulus NAME=SWEEP"):
        import_nwb(path, tmp_path / "c", name="flat", train_until_s=4.0)
    assert not (tmp_path / "c").exists()
    groups = {"A": ["sweep0", "sweep1", "sweep2"], "B": ["3", "4", "5"]}  # by series name or by sweep number
    challenge = load_challenge(import_nwb(path, tmp_path / "c", name="flat", stimuli=groups, test_stimuli=["B"],
                                          delta_ms=2.0))
    a, b = challenge.stimuli
    assert a.train_window_s == (0.0, DURATION_S) and a.test_window_s is None
    assert b.train_window_s is None and b.test_window_s == (0.0, DURATION_S) and challenge.delta_s == 0.002


def test_r_floor_makes_unreliable_stimuli_training_only(cells, tmp_path):
    path = write_nwb(tmp_path / "cell.nwb", cells)
    r = load_challenge(import_nwb(path, tmp_path / "all", name="all", train_until_s=4.0,
                                  r_floor=-1.0)).manifest["reliability"]
    floor = (r["A"] + r["B"]) / 2
    kept = max(r, key=r.get)
    challenge = load_challenge(import_nwb(path, tmp_path / "c", name="c", train_until_s=4.0, r_floor=floor))
    assert [s.name for s in challenge.test_stimuli()] == [kept]
    (dropped,) = set(r) - {kept}
    assert f"< {floor:g} in 4-6 s" in challenge.manifest["provenance"]["stimuli"][dropped]["test_excluded"]
    assert dropped in challenge.training_only_reasons()


def _truncated(path: Path, tmp_path: Path, cells: dict) -> Path:
    data = write_nwb(tmp_path / "whole.nwb", cells).read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _text(path: Path, tmp_path: Path, cells: dict) -> Path:
    path.write_text("time,voltage\n0,1\n")
    return path


def _hdf5_not_nwb(path: Path, tmp_path: Path, cells: dict) -> Path:
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    return path


def _voltage_clamp_only(path: Path, tmp_path: Path, cells: dict) -> Path:
    return write_nwb(path, cells, response_type=VoltageClampSeries, stimulus_type=VoltageClampStimulusSeries)


def _edit(path: Path, tmp_path: Path, cells: dict, edit) -> Path:
    write_nwb(path, cells)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _text_data(path, tmp_path, cells):
    def edit(f):
        del f["acquisition/sweep1/data"]
        f["acquisition/sweep1/data"] = np.array([b"a", b"b"])
        f["acquisition/sweep1/data"].attrs.update(conversion=1.0, resolution=-1.0, unit="volts", offset=0.0)
    return _edit(path, tmp_path, cells, edit)


def _short_response(path, tmp_path, cells):
    def edit(f):
        data = f["acquisition/sweep4/data"][:-10]
        attrs = dict(f["acquisition/sweep4/data"].attrs)
        del f["acquisition/sweep4/data"]
        f["acquisition/sweep4/data"] = data
        f["acquisition/sweep4/data"].attrs.update(attrs)
    return _edit(path, tmp_path, cells, edit)


def _missing_unit(path, tmp_path, cells):
    return _edit(path, tmp_path, cells, lambda f: f["stimulus/presentation/stim2/data"].attrs.__delitem__("unit"))


def _other_current(path, tmp_path, cells):
    def edit(f):
        f["stimulus/presentation/stim1/data"][100] += 5e-12  # 5 pA on one sample
    return _edit(path, tmp_path, cells, edit)


MALFORMED = {
    "truncated file": (_truncated, r"bad\.nwb: not a readable NWB file"),
    "text file": (_text, r"bad\.nwb: not an NWB file \(not HDF5\)"),
    "HDF5 but not NWB": (_hdf5_not_nwb, r"bad\.nwb: not a readable NWB file"),
    "no current clamp": (_voltage_clamp_only, r"bad\.nwb: no current-clamp data .*VoltageClampSeries"),
    "text instead of numbers": (_text_data, r"bad\.nwb: sweep sweep1 \(response\): data of type \|S1, expected numbers"),
    "mismatched lengths": (_short_response, r"bad\.nwb: sweep sweep4: mismatched lengths: 11990 voltage samples, "
                                            r"12000 current"),
    "missing unit": (_missing_unit, r"bad\.nwb: sweep sweep2 \(stimulus stim2\): unit None missing or unknown"),
    "sweeps with different currents": (_other_current, r"stimulus A: sweep sweep1's current differs from sweep "
                                                       r"sweep0's by 5 pA .*tolerance 2 pA \(--current-tolerance\)"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_refused_and_nothing_is_written(cells, tmp_path, case):
    make, message = MALFORMED[case]
    path = make(tmp_path / "bad.nwb", tmp_path, cells)
    dest = tmp_path / "out" / "bad"
    with pytest.raises(DataImportError, match=message):
        import_nwb(path, dest, name="bad", train_until_s=4.0)
    assert not dest.exists() and not any((tmp_path / "out").glob(".bad*"))


BAD_SPLITS = {
    "no split": ({}, r"^no split chosen: give --train-until"),
    "nothing to train on": ({"test_stimuli": ["A", "B"]}, r"^--test-stimuli A,B: holds out every stimulus"),
    "nothing to test": ({"train_until_s": 6.0}, r"^--train-until 6 s: leaves no test data in stimulus A"),
    "no training window": ({"train_until_s": 0.0}, r"^--train-until 0 s: leaves no training data"),
    "unknown stimulus": ({"test_stimuli": ["C"]}, r"^--test-stimuli C: no stimulus C \(stimuli: A, B\)"),
    "floor above every R": ({"train_until_s": 4.0, "r_floor": 1.01}, r"^--r-floor 1.01: no stimulus has R >= 1.01"),
    "unknown sweep": ({"train_until_s": 4.0, "stimuli": {"A": ["sweep0", "sweep9"]}},
                      r"^--stimulus A=sweep0,sweep9: .* has no current-clamp sweep 'sweep9'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPLITS))
def test_bad_split_is_refused_naming_the_option(cells, tmp_path, case):
    options, message = BAD_SPLITS[case]
    path = write_nwb(tmp_path / "cell.nwb", cells)
    with pytest.raises(DataImportError, match=message):
        import_nwb(path, tmp_path / "c", name="c", **options)
    assert not (tmp_path / "c").exists()


def test_cli_error_is_one_line_and_list_shows_the_source(cells, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(tmp_path / "data"))
    path = write_nwb(tmp_path / "my-cell.nwb", cells)
    assert cli_main(["data", "import-nwb", str(path), "--train-until", "9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --train-until 9 s") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "data" / "challenges" / "my-cell").exists()
    assert cli_main(["data", "import-nwb", str(path), "--train-until", "4", "--threshold-mv", "-10"]) == 0
    out = capsys.readouterr().out
    assert "spikes: upward crossings of -10 mV" in out and "my-cell.nwb (sha256 " in out
    assert cli_main(["list", "--challenges"]) == 0
    listing = capsys.readouterr().out
    from qsnmc.challenges.store import sha256_file

    assert f"my-cell.nwb (sha256 {sha256_file(path)[:16]})" in listing
    out = tmp_path / "again.nwb"
    assert cli_main(["data", "export-nwb", "my-cell", str(out)]) == 0 and out.is_file()
    assert cli_main(["data", "export-nwb", "my-cell", str(out)]) == 2
    assert cli_main(["data", "export-nwb", "no-such", str(tmp_path / "x.nwb")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("again.nwb exists; use --force to replace it") and "'no-such'" in err[1] and len(err) == 2
    assert not (tmp_path / "x.nwb").exists()


# -- the embedded challenge, exported and imported again ---------------------------------------------
@pytest.fixture(scope="module")
def round_trip(embedded_challenge, tmp_path_factory):
    """The embedded challenge exported to NWB (seconds and MB measured) and imported again."""
    import time

    root = tmp_path_factory.mktemp("nwb-round-trip")
    start = time.perf_counter()
    path = export_nwb(embedded_challenge, root / "embedded.nwb")
    exported_s = time.perf_counter() - start
    start = time.perf_counter()
    folder = import_nwb(path, root / "data" / "challenges" / "embedded-nwb", name="embedded-nwb")
    imported_s = time.perf_counter() - start
    print(f"export {exported_s:.1f} s, {path.stat().st_size / 1e6:.1f} MB; import {imported_s:.1f} s")
    return embedded_challenge, load_challenge(folder), path, root


def test_exported_file_is_valid_nwb_with_icephys_tables(round_trip):
    original, _, path, _ = round_trip
    with NWBHDF5IO(str(path), "r") as io:
        errors = pynwb.validate(io=io) if hasattr(pynwb, "validate") else []
        nwbfile = io.read()
        assert len(nwbfile.intracellular_recordings) == original.stimuli[0].n_repetitions
        assert list(nwbfile.icephys_sequential_recordings["stimulus_type"][:]) == ["A"]
        assert len(nwbfile.icephys_repetitions) == 1
    assert not errors


def test_round_trip_gives_the_same_challenge(round_trip):
    original, imported, _, _ = round_trip
    for a, b in zip(original.stimuli, imported.stimuli, strict=True):
        assert (a.name, a.dt_s, a.train_window_s, a.test_window_s) == (b.name, b.dt_s, b.train_window_s, b.test_window_s)
        assert np.array_equal(a.current_pA, b.current_pA) and np.array_equal(a.train_voltage_mV, b.train_voltage_mV)
        for x, y in zip(a.train_spikes_s + a.test_spikes_s, b.train_spikes_s + b.test_spikes_s, strict=True):
            assert np.array_equal(x, y)
    assert imported.manifest["reliability"] == original.manifest["reliability"]
    assert imported.delta_s == original.delta_s and imported.description == original.description


@pytest.mark.slow  # two sandboxed runs of lif on 13 x 60 s (its threshold fitted on 5 s of the window)
def test_lif_scores_the_same_on_both(round_trip, tmp_path):
    _, _, _, root = round_trip
    scores = {}
    for name in ("embedded", "embedded-nwb"):
        proc = run_cli(["run", "lif", "--challenge", name, "--no-cache", "--quiet", "--runs-dir", str(tmp_path / name),
                        "--budget", "0.1", "--json", "rows.json"], cwd=tmp_path, data_dir=root / "data", timeout=300)
        assert proc.returncode == 0, proc.stderr
        row = read_rows(tmp_path / "rows.json")["lif"]
        run = json.loads(next((tmp_path / name).glob("*/run.json")).read_text())
        scores[name] = (row["status"], row["gamma"], row["performance"], row["error"])
        assert run["challenge_source"]["file"]
    assert scores["embedded"][0] == "ok" and scores["embedded"] == scores["embedded-nwb"]


def test_round_trip_keeps_several_stimuli_and_training_only_reasons(cells, tmp_path):
    from qsnmc.challenges.arrays import import_arrays

    arrays = {"dt_s": np.array(DT_S), "current_unit": np.array("pA"), "voltage_unit": np.array("mV")}
    for name, (current, voltage) in cells.items():
        arrays[f"current/{name}"], arrays[f"voltage/{name}"] = current, voltage
    np.savez(tmp_path / "cell.npz", **arrays)
    r = load_challenge(import_arrays(tmp_path / "cell.npz", tmp_path / "all", name="all", train_until_s=4.0,
                                     delta_ms=2.0, r_floor=-1.0)).manifest["reliability"]
    original = load_challenge(import_arrays(tmp_path / "cell.npz", tmp_path / "c", name="c", train_until_s=4.0,
                                            delta_ms=2.0, r_floor=(r["A"] + r["B"]) / 2))
    assert len(original.training_only_reasons()) == 1
    again = load_challenge(import_nwb(export_nwb(original, tmp_path / "c.nwb"), tmp_path / "again", name="again"))
    assert again.training_only_reasons() == original.training_only_reasons()
    assert again.manifest["reliability"] == original.manifest["reliability"] and again.delta_s == 0.002
    for a, b in zip(original.stimuli, again.stimuli, strict=True):
        assert (a.train_window_s, a.test_window_s) == (b.train_window_s, b.test_window_s)
        assert np.array_equal(a.current_pA, b.current_pA) and np.array_equal(a.train_voltage_mV, b.train_voltage_mV)
        for x, y in zip(a.train_spikes_s + (a.test_spikes_s or []), b.train_spikes_s + (b.test_spikes_s or []),
                        strict=True):
            assert np.array_equal(x, y)


def test_stimulus_type_becomes_a_stimulus_name(cells, tmp_path):
    path = write_nwb(tmp_path / "types.nwb", {"Long Square": cells["A"], "noise 1": cells["B"]})
    challenge = load_challenge(import_nwb(path, tmp_path / "c", name="c", test_stimuli=["noise_1"]))
    assert [s.name for s in challenge.stimuli] == ["Long_Square", "noise_1"]
    assert challenge.manifest["provenance"]["stimuli"]["noise_1"]["sweeps"] == ["sweep3", "sweep4", "sweep5"]
