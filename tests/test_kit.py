"""qsnmc data export-kit: the public kit holds the training data and the test currents, and no
test-window spike or voltage sample, searched for in every file of the kit (text, JSON, NWB)."""
from __future__ import annotations

import gzip
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT, SHARED
from qsnmc.challenges.arrays import import_arrays
from qsnmc.challenges.kit import write_kit
from qsnmc.challenges.qsnmc2007 import import_qsnmc2007
from qsnmc.challenges.store import load_challenge
from qsnmc.cli.main import main
from qsnmc.scoring.spikes import spike_times_from_voltage
from synthetic import DT_S, simulate_noisy_lif

SHARED_2007 = SHARED / "qsnmc2007" / "challengeA"
#: a leaked spike train shows as two consecutive test spike times side by side in some array
SPIKE_TOLERANCE_S = 1e-9
#: samples of recorded voltage around a test spike that, found in a row in some array, are a leak
SNIPPET_SAMPLES = 10


# -- every number of every file, as the sequences a leak would show in ------------------------------------
def _text_sequences(path: Path) -> list[np.ndarray]:
    """A text file's numbers: a table's rows run together and each of its columns; else all numbers in order."""
    text = path.read_text(errors="replace")
    if path.suffix == ".txt":
        rows = [r for r in text.splitlines() if r.strip() and not r.startswith("#")]
        table = np.loadtxt(rows, ndmin=2, delimiter="\t" if rows and "\t" in rows[0] else None)
        return [table.ravel(), *table.T] if table.shape[1] > 1 else [table.ravel()]
    return [np.array([float(x) for x in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", text)])]


def _nwb_sequences(path: Path) -> list[np.ndarray]:
    """Every numeric dataset and attribute of an HDF5 file, flattened and (2-D) by column; numbers in strings."""
    import h5py

    out: list[np.ndarray] = []

    def numbers(value) -> None:
        a = np.asarray(value)
        if a.dtype.kind in "fiu":
            a = a.astype(np.float64)
            out.append(a.ravel())
            if a.ndim == 2:
                out.extend(a.T)
        elif a.dtype.kind in "SOU":
            text = " ".join(x.decode(errors="replace") if isinstance(x, bytes) else str(x) for x in a.ravel())
            out.append(np.array([float(x) for x in re.findall(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?", text)]))

    def visit(name, obj) -> None:
        for v in obj.attrs.values():
            numbers(v)
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiuSOU" and obj.shape != ():
            numbers(obj[()])
        elif isinstance(obj, h5py.Dataset) and obj.shape == ():
            numbers(obj[()])

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def kit_sequences(kit: Path) -> dict[str, list[Indexed]]:
    """Per file of the kit (every one), the number sequences it holds, indexed for the searches."""
    files = sorted(p for p in kit.rglob("*") if p.is_file())
    assert {p.suffix for p in files} <= {".txt", ".json", ".md", ".nwb"}, files
    return {str(p.relative_to(kit)): [Indexed(x) for x in (_nwb_sequences(p) if p.suffix == ".nwb"
                                                            else _text_sequences(p)) if x.size]
            for p in files}


class Indexed:
    """A sequence of numbers with its sorted order, searched for runs of consecutive values."""

    def __init__(self, seq: np.ndarray) -> None:
        self.seq = np.asarray(seq, np.float64)
        self.order = np.argsort(self.seq, kind="stable")
        self.sorted = self.seq[self.order]

    def starts_near(self, values: np.ndarray, tol: np.ndarray | float) -> list[np.ndarray]:
        """For each value, the positions in the sequence holding it (within ``tol``)."""
        values = np.asarray(values, np.float64)
        lo = np.searchsorted(self.sorted, values - tol, side="left")
        hi = np.searchsorted(self.sorted, values + tol, side="right")
        return [self.order[a:b] for a, b in zip(lo, hi)]

    def contains_run(self, run: np.ndarray, tol: float) -> bool:
        """Whether ``run`` appears as consecutive values, each within ``tol``."""
        starts = self.starts_near(run[:1], tol)[0]
        starts = starts[starts + run.size <= self.seq.size]
        ok = np.ones(starts.size, bool)
        for j in range(1, run.size):
            ok &= np.abs(self.seq[starts + j] - run[j]) <= tol
        return bool(ok.any())


def leaked_spike_pairs(sequences: dict[str, list[Indexed]], hidden: list[np.ndarray]) -> list[str]:
    """Where two consecutive hidden spike times (in s or in ms) stand side by side in the kit."""
    firsts = np.concatenate([t[:-1] for t in hidden if t.size >= 2])
    nexts = np.concatenate([t[1:] for t in hidden if t.size >= 2])
    found = []
    for where, seqs in sequences.items():
        for ix in seqs:
            for scale in (1.0, 1e3):
                a, b = firsts * scale, nexts * scale
                tol_a, tol_b = (SPIKE_TOLERANCE_S * scale * np.maximum(1.0, np.abs(x)) for x in (a, b))
                lo = np.searchsorted(ix.sorted, a - tol_a, side="left")
                hi = np.searchsorted(ix.sorted, a + tol_a, side="right")
                for k in np.flatnonzero(hi > lo):
                    starts = ix.order[lo[k]:hi[k]]
                    starts = starts[starts + 1 < ix.seq.size]
                    if np.any(np.abs(ix.seq[starts + 1] - b[k]) <= tol_b[k]):
                        found.append(f"{where}: {a[k]:.17g}, {b[k]:.17g}")
    return found


def leaked_voltage(sequences: dict[str, list[Indexed]], snippets: list[np.ndarray], tol_mV: float) -> list[str]:
    """Where a snippet of hidden test-window voltage stands in the kit, sample after sample."""
    return [f"{where}: {snip[:3]}..." for where, seqs in sequences.items() for ix in seqs
            for snip in snippets if ix.contains_run(snip, tol_mV)]


def voltage_snippets(voltage_mV: np.ndarray, dt_s: float, window_s: tuple[float, float], n: int = 12) -> list[np.ndarray]:
    """Up to ``n`` runs of :data:`SNIPPET_SAMPLES` samples starting 3 samples before test-window spikes."""
    out = []
    for row in np.atleast_2d(voltage_mV):
        spikes = spike_times_from_voltage(row[None, :], dt_s)[0]
        for t in spikes[(spikes >= window_s[0] + 0.01) & (spikes < window_s[1] - 0.01)][:n]:
            k = int(round(t / dt_s)) - 3
            out.append(np.asarray(row[k:k + SNIPPET_SAMPLES], np.float64))
    return out


def check_structure(kit: Path, challenge) -> None:
    """Voltage rows only over training windows; the NWB voltage NaN outside them; no hidden key or number."""
    info = json.loads((kit / "kit.json").read_text())
    assert info["format"] == "qsnmc-kit/1" and info["dt_s"] == challenge.stimuli[0].dt_s
    assert info["delta_s"] == challenge.delta_s and info["units"] == {"time": "s", "current": "pA", "voltage": "mV"}
    text = (kit / "kit.json").read_text() + (kit / "README.md").read_text()
    for word in ("test_spike", "reliability_test", "test_excluded", "spike_counts"):
        assert word not in text
    for s in challenge.stimuli:
        entry = next(e for e in info["stimuli"] if e["name"] == s.name)
        assert entry["test_window_s"] == (list(s.test_window_s) if s.test_window_s else None)
        current = np.loadtxt(kit / entry["current"])
        np.testing.assert_array_equal(current, s.current_pA)  # exact: 17 digits
        if s.train_window_s is not None:
            volt = np.loadtxt(kit / entry["voltage"], ndmin=2)
            assert volt.shape == s.train_voltage_mV.T.shape  # the training window's samples, nothing more
            np.testing.assert_allclose(volt, s.train_voltage_mV.T, rtol=1e-7, atol=1e-6)
            for f, train in zip(entry["spike_times"], s.train_spikes_s):
                np.testing.assert_array_equal(np.loadtxt(kit / f, ndmin=1), train)
    _check_nwb(kit / info["nwb"], challenge)


def _check_nwb(path: Path, challenge) -> None:
    import h5py

    with h5py.File(path, "r") as f:
        for s in challenge.stimuli:
            train = s.train_window_s or (0.0, 0.0)
            i0, i1 = int(round(train[0] / s.dt_s)), int(round(train[1] / s.dt_s))
            for r in range(s.n_repetitions):
                v = f["acquisition"][f"{s.name}_{r:02d}"]["data"][()]
                assert np.isnan(v[:i0]).all() and np.isnan(v[i1:]).all() and not np.isnan(v[i0:i1]).any()
        spikes = f["processing"]["qsnmc"]["qsnmc_sweeps"]["spike_times"][()]
        windows = [s.train_window_s for s in challenge.stimuli if s.train_window_s]
        assert all(any(a <= t <= b for a, b in windows) for t in spikes)


def hidden_trains(challenge) -> list[np.ndarray]:
    return [t for s in challenge.stimuli if s.test_spikes_s for t in s.test_spikes_s]


def assert_no_leak(kit: Path, challenge, snippets: list[np.ndarray] = (), tol_mV: float = 0.0) -> None:
    check_structure(kit, challenge)
    sequences = kit_sequences(kit)
    hidden = hidden_trains(challenge)
    assert sum(t.size for t in hidden) > 20  # something to find
    assert not leaked_spike_pairs(sequences, hidden)
    if snippets:
        assert not leaked_voltage(sequences, snippets, tol_mV)


def test_the_search_finds_a_leak(tmp_path, data_dir):
    """The searches are not blind: test spike times (in ms, in a JSON list) and a voltage snippet put into a
    kit are found."""
    challenge = load_challenge(data_dir / "challenges" / "synthetic-test")
    kit = write_kit(challenge, tmp_path / "kit")
    train = hidden_trains(challenge)[2]
    sequences = kit_sequences(kit)
    assert not leaked_spike_pairs(sequences, [train])
    (kit / "extra.json").write_text(json.dumps({"t": (train[5:9] * 1e3).tolist()}))
    assert leaked_spike_pairs(kit_sequences(kit), [train])
    snippet = np.round(np.linspace(-60, 30, SNIPPET_SAMPLES), 3)
    assert not leaked_voltage(sequences, [snippet], 1e-3)
    (kit / "extra.json").write_text(json.dumps({"v": [1.0, *snippet.tolist(), 2.0]}))
    assert leaked_voltage(kit_sequences(kit), [snippet], 1e-3)


def test_embedded_kit_holds_no_test_window_data(embedded_challenge, tmp_path, capsys):
    start = time.perf_counter()
    assert main(["data", "export-kit", "embedded", str(tmp_path / "kit")]) == 0
    took = time.perf_counter() - start
    out = capsys.readouterr().out
    assert "public kit of 'embedded' written to" in out and "no test-window recording" in out
    print(f"export-kit embedded: {took:.1f} s")
    # the embedded challenge keeps no test-window voltage anywhere: its absence is checked by the structure
    assert_no_leak(tmp_path / "kit", embedded_challenge)


def test_kit_refuses_an_existing_folder_and_an_unknown_challenge(tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(data_dir))
    (tmp_path / "there").mkdir()
    assert main(["data", "export-kit", "synthetic-test", str(tmp_path / "there")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and not any((tmp_path / "there").iterdir())
    assert main(["data", "export-kit", "nope", str(tmp_path / "k")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no challenge 'nope'" in err and not (tmp_path / "k").exists()


def test_imported_cell_kit_holds_no_test_window_data(tmp_path):
    """import-arrays of a simulated cell with two stimuli: A split in time, B held out whole."""
    cells = {name: simulate_noisy_lif(6.0, 3, seed=seed) for name, seed in (("A", 5), ("B", 6))}
    arrays = {"dt_s": np.array(DT_S), "current_unit": np.array("pA"), "voltage_unit": np.array("mV")}
    for name, (current, voltage) in cells.items():
        arrays[f"current/{name}"], arrays[f"voltage/{name}"] = current, voltage
    np.savez(tmp_path / "cell.npz", **arrays)
    challenge = load_challenge(import_arrays(tmp_path / "cell.npz", tmp_path / "c", name="cell", train_until_s=4.0,
                                             test_stimuli=["B"]))
    assert {s.name: s.test_window_s for s in challenge.stimuli} == {"A": (4.0, 6.0), "B": (0.0, 6.0)}
    kit = write_kit(challenge, tmp_path / "kit")
    snippets = voltage_snippets(cells["A"][1], DT_S, (4.0, 6.0)) + voltage_snippets(cells["B"][1], DT_S, (0.0, 6.0))
    assert len(snippets) > 20
    assert_no_leak(kit, challenge, snippets, tol_mV=0.01)
    # the snippet search would see them in the raw arrays
    assert leaked_voltage({"raw": [Indexed(cells["A"][1][0])]}, snippets[:1], 0.01)


def _raw_2007_voltage(stim: str, rep: int) -> np.ndarray:
    with gzip.open(SHARED_2007 / "training" / f"{stim}-{rep}.voltage.gz", "rt") as f:
        return np.loadtxt(f)[:, 2]


def test_2007_kit_holds_no_test_window_data(tmp_path):
    if not (SHARED_2007 / "training" / "00-0.voltage.gz").is_file():
        pytest.skip(f"the QSNMC 2007 Challenge A recordings are not at {SHARED_2007}")
    challenge = load_challenge(import_qsnmc2007(SHARED_2007, tmp_path / "qsnmc2007a"))
    kit = write_kit(challenge, tmp_path / "kit")
    dt = challenge.stimuli[0].dt_s
    snippets = []
    for s in challenge.stimuli:  # after 22 s every stimulus' voltage is unpublished, tested or not
        for r in range(s.n_repetitions):
            snippets += voltage_snippets(_raw_2007_voltage(s.name, r), dt, (22.0, 34.0), n=3)
    assert len(snippets) > 50
    assert_no_leak(kit, challenge, snippets, tol_mV=0.01)


def test_a_participant_reproduces_the_training_reliability_from_the_kit_alone(tmp_path, data_dir):
    """R of each training window, from the kit's text files and the example script's NumPy Gamma (no qsnmc),
    is the kit's figure and qsnmc's own."""
    import importlib.util

    from qsnmc.scoring.metrics import intrinsic_reliability

    spec = importlib.util.spec_from_file_location("outside_threshold", PROJECT / "examples" / "outside_threshold.py")
    outside = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(outside)
    challenge = load_challenge(data_dir / "challenges" / "synthetic-two")
    kit = write_kit(challenge, tmp_path / "kit", nwb=False)
    info = json.loads((kit / "kit.json").read_text())
    for entry, s in zip(info["stimuli"], challenge.stimuli):
        trains = [np.loadtxt(kit / f, ndmin=1) for f in entry["spike_times"]]
        a, b = entry["train_window_s"]
        r = np.mean([outside.gamma(trains[i], trains[j], info["delta_s"], b - a)
                     for i in range(len(trains)) for j in range(len(trains)) if i != j])
        assert r == pytest.approx(entry["train_reliability"], abs=1e-12)
        assert r == pytest.approx(intrinsic_reliability(s.train_spikes_s, challenge.delta_s, duration=b - a), abs=1e-12)
        assert f"| {s.name} | {s.n_repetitions} | {a:g}-{b:g} s |" in (kit / "README.md").read_text()
