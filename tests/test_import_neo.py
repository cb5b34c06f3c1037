"""qsnmc data import-neo: real ABF files of ../shared/abf (reading, units, channels, protocol currents,
repetitions, refusals) and a repeated frozen-noise cell written with Neo's own NixIO writer (end to end)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

neo = pytest.importorskip("neo")
pq = pytest.importorskip("quantities")
pytest.importorskip("nixio")

from conftest import SHARED, read_rows, run_cli  # noqa: E402
from qsnmc.challenges.neo_challenge import find_stimuli, import_neo  # noqa: E402
from qsnmc.challenges.neo_import import NEO_MISSING, read_sweeps  # noqa: E402
from qsnmc.challenges.store import load_challenge, sha256_file  # noqa: E402
from qsnmc.challenges.textdata import DataImportError  # noqa: E402
from qsnmc.cli.main import main as cli_main  # noqa: E402
from qsnmc.scoring.metrics import intrinsic_reliability  # noqa: E402
from qsnmc.scoring.spikes import spike_times_from_voltage  # noqa: E402
from synthetic import DT_S, simulate_noisy_lif  # noqa: E402

ABF = SHARED / "abf"
STEPS = ABF / "2020_03_02_0000.abf"          # Potential (mV), I_Com (pA); 16 x 2 s at 10 kHz
PROTOCOL = ABF / "17o05028_ic_steps.abf"     # IN 0 (mV); current in the protocol only; 16 x 3 s at 20 kHz
SINE = ABF / "171116sh_0017.abf"             # IN 0 (mV); protocol plays a stimulus file; 3 x 10 s, no spikes
PULSE = ABF / "2019_05_02_DIC2_0011.abf"     # IN 0 (mV), I_MTest 1 (pA); 3 identical sweeps
#: spikes per sweep, from ../shared/abf/SOURCES.md (upward crossings of 0 mV)
STEPS_SPIKES = [0, 0, 0, 0, 0, 2, 4, 4, 5, 2, 1, 4, 5, 2, 3, 4]
PROTOCOL_SPIKES = [10, 11, 12, 12, 12, 16, 18, 20, 22, 25, 29, 32, 35, 39, 40, 42]

needs_abf = pytest.mark.skipif(not (ABF / "SOURCES.md").is_file(), reason="../shared/abf absent")


# -- files written with Neo's NixIO ---------------------------------------------------------------
def write_nix(path: Path, sweeps: list[dict], *, dt_s: float = DT_S) -> Path:
    """A NIX file of one Neo segment per sweep; each dict maps a channel name to (values, unit)."""
    from neo.io import NixIO

    block = neo.Block(name="cell")
    for k, channels in enumerate(sweeps):
        segment = neo.Segment(name=f"sweep {k + 1}")
        for name, (values, unit) in channels.items():
            segment.analogsignals.append(neo.AnalogSignal(np.asarray(values, np.float64)[:, None], units=unit,
                                                          sampling_period=dt_s * pq.s, name=name))
        block.segments.append(segment)
    with NixIO(str(path), mode="ow") as io:
        io.write_block(block)
    return path


@pytest.fixture(scope="module")
def cells() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Frozen-noise stimuli of a noisy LIF (current pA, voltage mV reps x samples), 6 s at 2 kHz: A and B
    repeated 3 times, C once."""
    cells = {name: simulate_noisy_lif(6.0, 3, seed=seed) for name, seed in (("A", 3), ("B", 4))}
    current, voltage = simulate_noisy_lif(6.0, 1, seed=5)
    cells["C"] = (current, voltage)
    return cells


@pytest.fixture(scope="module")
def frozen_nix(cells, tmp_path_factory) -> Path:
    """The cells as one NIX file, sweeps interleaved A B C A B A B, voltage in V and current in nA."""
    order = [("A", 0), ("B", 0), ("C", 0), ("A", 1), ("B", 1), ("A", 2), ("B", 2)]
    sweeps = [{"Vm": (cells[s][1][r] * 1e-3, "V"), "Iinj": (cells[s][0] * 1e-3, "nA")} for s, r in order]
    return write_nix(tmp_path_factory.mktemp("nix") / "frozen cell.nix", sweeps)


def _cli(argv: list[str], data: Path, monkeypatch) -> int:
    monkeypatch.setenv("QSNMC_DATA_DIR", str(data))
    return cli_main(argv)


# -- the real ABF files ---------------------------------------------------------------------------------
@needs_abf
def test_abf_channels_units_and_spike_counts_match_the_sources():
    sweeps, facts = read_sweeps([STEPS])
    assert len(sweeps) == 16 and {s.voltage_mV.size for s in sweeps} == {20000}
    assert sweeps[0].dt_s == pytest.approx(1e-4)
    assert facts["files"][0]["voltage_channel"] == "Potential (mV)"
    assert facts["files"][0]["current_channel"] == "I_Com (pA)"
    assert [len(spike_times_from_voltage(s.voltage_mV[None], s.dt_s)[0]) for s in sweeps] == STEPS_SPIKES
    # channel chosen by index gives the same data as by name
    by_index, _ = read_sweeps([STEPS], voltage_channel="0", current_channel="1", sweeps="3")
    assert np.array_equal(by_index[0].voltage_mV, sweeps[2].voltage_mV)
    assert np.array_equal(by_index[0].current_pA, sweeps[2].current_pA)


@needs_abf
def test_protocol_current_gives_the_step_levels_and_the_manifest_says_so():
    sweeps, facts = read_sweeps([PROTOCOL], current_from_protocol=True, sweeps="1,6,16")
    assert [s.number for s in sweeps] == [1, 6, 16] and [s.index for s in sweeps] == [0, 5, 15]
    # "steps dual -50 to 150 step 10": a -50 pA step in every sweep, then -50 + 10 (k - 1) pA
    levels = [sorted(set(np.unique(s.current_pA)) - {0.0}) for s in sweeps]
    assert levels == [[-50.0], [-50.0], [-50.0, 100.0]]
    assert "read_raw_protocol" in facts["files"][0]["current"] and "0112 steps" in facts["files"][0]["protocol"]
    recordings = find_stimuli(read_sweeps([PROTOCOL], current_from_protocol=True)[0])
    assert [r.info["spike_counts"] for r in recordings] == [[n] for n in PROTOCOL_SPIKES]


@needs_abf
@pytest.mark.parametrize("protocol", [False, True], ids=["recorded", "protocol"])
def test_identical_sweeps_are_found_to_be_one_stimulus(protocol):
    sweeps, _ = read_sweeps([PULSE], current_from_protocol=protocol)
    (stimulus,) = find_stimuli(sweeps)
    assert stimulus.info["repetitions"] == 3 and stimulus.info["spike_counts"] == [0, 0, 1]
    assert stimulus.info["max_current_difference_pA"] <= stimulus.info["current_tolerance_pA"]
    # a tolerance under the recorded current's noise splits them again
    if not protocol:
        assert len(find_stimuli(sweeps, abs_tol_pA=0.1)) == 3


@needs_abf
def test_protocol_import_says_where_the_current_came_from(tmp_path):
    folder = import_neo([PULSE], tmp_path / "c", name="pulse", current_from_protocol=True, train_until_s=5.0,
                        r_floor=0.0)
    challenge = load_challenge(folder)
    (stimulus,) = challenge.stimuli
    assert stimulus.n_repetitions == 3 and np.all(stimulus.current_pA == -35.0)  # the protocol's -35 pA holding
    prov = challenge.manifest["provenance"]
    assert "read_raw_protocol()" in prov["neo"]["files"][0]["current"] and "not a recorded current" in \
        prov["neo"]["files"][0]["current"]
    assert prov["neo"]["files"][0]["protocol"].endswith("4s-HALO Current Clamp Pulse.pro")
    assert prov["source_sha256"] == sha256_file(PULSE) and prov["stimuli"]["S1"]["spike_counts"] == [0, 0, 1]


@needs_abf
def test_steps_are_each_a_stimulus_of_their_own():
    sweeps, _ = read_sweeps([STEPS])
    recordings = find_stimuli(sweeps)
    assert [r.info["repetitions"] for r in recordings] == [1] * 16
    assert all(r.info["test_excluded"].startswith("1 repetition") for r in recordings)


@needs_abf
def test_dry_run_lists_the_stimuli_and_writes_nothing(tmp_path, monkeypatch, capsys):
    assert _cli(["data", "import-neo", str(PULSE), "--dry-run"], tmp_path, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "voltage IN 0 (mV), current I_MTest 1 (pA)" in out and "3 sweeps of 10 s at 20000 Hz" in out
    row = next(line.split() for line in out.splitlines() if line.startswith("S1 "))
    assert row[:6] == ["S1", "1-3", "3", "0", "0", "1"]
    assert out.rstrip().endswith("dry run: nothing written") and not (tmp_path / "challenges").exists()


@needs_abf
@pytest.mark.parametrize("argv, message", [
    (["{STEPS}", "--voltage-channel", "Vm"],
     r"2020_03_02_0000\.abf: --voltage-channel Vm: no such channel \(channels: 0: Potential \(mV\), 1: I_Com \(pA\)\)"),
    (["{STEPS}", "--voltage-channel", "I_Com"], r"2020_03_02_0000\.abf: channel I_Com is in pA, not a voltage"),
    (["{STEPS}", "--current-channel", "Potential"], r"channel Potential is in mV, not a current"),
    (["{STEPS}", "--sweeps", "3-17"], r"--sweeps 3-17: sweep 17 out of range: 2020_03_02_0000\.abf holds 16 sweeps"),
    (["{STEPS}", "--sweeps", "0"], r"--sweeps 0: sweep 0 out of range"),
    (["{STEPS}", "--sweeps", "1-5"], r"2020_03_02_0000\.abf: no spikes: no upward crossing of 0 mV in any of the 5"),
    (["{STEPS}"], r"2020_03_02_0000\.abf: no repeated stimulus: each of the 16 stimuli found has one sweep"),
    (["{PROTOCOL}"], r"17o05028_ic_steps\.abf: no channel in a current unit \(channels: 0: IN 0 \(mV\)\)"),
    (["{SINE}", "--current-from-protocol"], r"171116sh_0017\.abf: --current-from-protocol: output Cmd 0 plays a "
                                            r"stimulus file"),
    (["{SOURCES}"], r"SOURCES\.md: Neo cannot read it"),
    (["{STEPS}", "{PULSE}", "--sweeps", "16-17"], r"2019_05_02_DIC2_0011\.abf: .*sampled at 20000 Hz, "
                                                   r"2020_03_02_0000\.abf sweep 16 at 10000 Hz"),
], ids=["unknown-channel", "voltage-in-pA", "current-in-mV", "sweeps-out-of-range", "sweep-zero", "no-spikes",
        "no-repetition", "no-current-channel", "protocol-stimulus-file", "not-readable", "different-rates"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(argv, message, tmp_path, monkeypatch, capsys):
    files = {"STEPS": STEPS, "PROTOCOL": PROTOCOL, "SINE": SINE, "PULSE": PULSE, "SOURCES": ABF / "SOURCES.md"}
    argv = [a.format(**files) for a in argv]
    assert _cli(["data", "import-neo", *argv, "--train-until", "1"], tmp_path, monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "challenges").exists()


# -- files written here with Neo ------------------------------------------------------------------------
def test_unitless_and_implausible_channels_are_refused(cells, tmp_path):
    current, voltage = cells["A"]
    sweeps = [{"Vm": (voltage[r], "mV"), "aux": (voltage[r], "dimensionless"), "I": (current, "A")} for r in range(3)]
    path = write_nix(tmp_path / "odd.nix", sweeps)
    with pytest.raises(DataImportError, match=r"odd\.nix: channel aux is in no unit, not a voltage"):
        read_sweeps([path], voltage_channel="aux")
    with pytest.raises(DataImportError, match=r"odd\.nix: current I \(A\): amplitude max \|I\| = .* pA is implausible"):
        read_sweeps([path])
    volts_as_mV = write_nix(tmp_path / "volts.nix", [{"Vm": (voltage[r] * 1e-3, "mV"), "I": (current, "pA")}
                                                       for r in range(3)])
    with pytest.raises(DataImportError, match=r"volts\.nix: voltage channel Vm \(mV\): voltage amplitude .* "
                                              r"implausible for mV"):
        read_sweeps([volts_as_mV])


def test_sweeps_of_different_lengths_are_read_and_never_one_stimulus(cells, tmp_path):
    current, voltage = cells["A"]
    path = write_nix(tmp_path / "lengths.nix", [{"Vm": (voltage[0], "mV"), "I": (current, "pA")},
                                                {"Vm": (voltage[1][:-10], "mV"), "I": (current[:-10], "pA")}])
    sweeps, _ = read_sweeps([path])
    assert [s.voltage_mV.size for s in sweeps] == [12000, 11990]
    recordings = find_stimuli(sweeps)
    assert [(r.info["repetitions"], r.current_pA.size, r.info["duration_s"]) for r in recordings] == \
        [(1, 12000, 6.0), (1, 11990, 5.995)]


def test_missing_samples_are_refused(cells, tmp_path):
    current, voltage = cells["A"]
    holed = voltage[1].copy()
    holed[2000] = np.nan
    path = write_nix(tmp_path / "holes.nix", [{"Vm": (voltage[0], "mV"), "I": (current, "pA")},
                                              {"Vm": (holed, "mV"), "I": (current, "pA")}])
    with pytest.raises(DataImportError, match=r"holes\.nix: holes\.nix sweep 2: missing \(NaN\) or infinite sample "
                                              r"at 1 s"):
        read_sweeps([path])


def test_missing_neo_is_a_clear_message(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "neo", None)
    path = tmp_path / "cell.abf"
    path.write_bytes(b"x")
    with pytest.raises(DataImportError, match="^" + NEO_MISSING.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.").replace("[", r"\[").replace("]", r"\]") + "$"):
        read_sweeps([path])


def test_frozen_noise_cell_imports_with_units_repetitions_and_R(cells, frozen_nix, tmp_path):
    folder = import_neo([frozen_nix], tmp_path / "c", name="frozen", train_until_s=4.0)
    challenge = load_challenge(folder)
    assert [s.name for s in challenge.stimuli] == ["S1", "S2", "S3"]
    info = challenge.manifest["provenance"]["stimuli"]
    assert [info[n]["sweep_numbers"] for n in ("S1", "S2", "S3")] == [[1, 4, 6], [2, 5, 7], [3]]
    for stim, cell in zip(challenge.stimuli, ("A", "B", "C")):
        current, voltage = cells[cell]
        np.testing.assert_allclose(stim.current_pA, current, rtol=1e-5, atol=1e-3)  # nA -> pA, float32
        np.testing.assert_allclose(stim.train_voltage_mV, voltage[:, :8000], atol=1 / 256)  # V -> mV
        assert stim.n_repetitions == voltage.shape[0]
    s1 = challenge.stimuli[0]
    spikes = spike_times_from_voltage(cells["A"][1], DT_S)
    assert challenge.reliability("S1") == pytest.approx(
        intrinsic_reliability([t[t >= 4.0] for t in spikes], 0.004, duration=2.0), abs=1e-4)
    assert [len(t) for t in s1.test_spikes_s] == [int(np.sum(t >= 4.0)) for t in spikes]
    assert challenge.training_only_reasons() == {"S3": "1 repetition: R needs 2 (test window 4-6 s)"}
    prov = challenge.manifest["provenance"]
    assert prov["source_sha256"] == sha256_file(frozen_nix) and prov["importer"] == "qsnmc.challenges.neo_challenge"
    assert "5 ms means" in prov["repetitions"] and prov["neo"]["files"][0]["current_channel"] == "Iinj (nA)"


def test_current_files_pair_with_voltage_files_one_sweep_each(cells, tmp_path):
    current, voltage = cells["A"]
    v_files = [write_nix(tmp_path / f"v{r}.nix", [{"Vm": (voltage[r], "mV")}]) for r in range(3)]
    i_files = [write_nix(tmp_path / f"i{r}.nix", [{"I": (current * 1e-12, "A")}]) for r in range(3)]
    sweeps, facts = read_sweeps(v_files, current_files=i_files)
    assert [s.label for s in sweeps] == ["v0.nix sweep 1", "v1.nix sweep 1", "v2.nix sweep 1"]
    assert facts["files"][1]["current_channel"] == "I (A) of i1.nix"
    (stimulus,) = find_stimuli(sweeps)
    assert stimulus.info["repetitions"] == 3
    np.testing.assert_allclose(stimulus.current_pA, current, atol=1e-6)
    with pytest.raises(DataImportError, match=r"--current-files: 2 files for 3 voltage files"):
        read_sweeps(v_files, current_files=i_files[:2])


def test_existing_challenge_is_not_replaced_without_force(frozen_nix, tmp_path, monkeypatch, capsys):
    argv = ["data", "import-neo", str(frozen_nix), "--train-until", "4", "--name", "mine"]
    assert _cli(argv, tmp_path, monkeypatch) == 0
    manifest = tmp_path / "challenges" / "mine" / "manifest.json"
    before = manifest.read_bytes()
    capsys.readouterr()
    assert _cli(argv + ["--r-floor", "0"], tmp_path, monkeypatch) == 2
    assert "already exists" in capsys.readouterr().err and manifest.read_bytes() == before
    assert _cli(argv + ["--r-floor", "0", "--force"], tmp_path, monkeypatch) == 0
    assert json.loads(manifest.read_text())["provenance"]["split"]["r_floor"] == 0


@pytest.mark.slow  # a sandboxed lif run: about 6-9 s
def test_cli_import_then_lif_runs_on_it(frozen_nix, tmp_path):
    data = tmp_path / "data"
    proc = run_cli(["data", "import-neo", str(frozen_nix), "--train-until", "4"], cwd=tmp_path, data_dir=data)
    assert proc.returncode == 0, proc.stderr
    assert "3 stimuli; 2 with 2 or more repetitions (R possible): S1, S2; the others are training-only" in proc.stdout
    assert "training only: stimulus S3: 1 repetition: R needs 2" in proc.stdout
    proc = run_cli(["run", "lif", "--challenge", "frozen-cell", "--quiet", "--runs-dir", str(tmp_path / "runs"),
                    "--json", "rows.json"], cwd=tmp_path, data_dir=data, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = read_rows(tmp_path / "rows.json")["lif"]
    assert row["status"] == "ok" and 0 < row["gamma"] <= 1
