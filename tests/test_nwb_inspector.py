"""export-nwb files pass the NWB Inspector; import-nwb reads a file written with pynwb's own API in the
layout of pynwb's icephys tutorial (series added through add_intracellular_recording, the simultaneous,
sequential, repetitions and experimental-conditions tables), not by qsnmc's exporter."""
from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")
nwbinspector = pytest.importorskip("nwbinspector")

from qsnmc.challenges.nwb import export_nwb, import_nwb  # noqa: E402
from qsnmc.challenges.store import load_challenge  # noqa: E402
from qsnmc.cli.main import main as cli_main  # noqa: E402
from qsnmc.scoring.spikes import spike_times_from_voltage  # noqa: E402
from synthetic import DT_S, simulate_noisy_lif, write_synthetic_challenge  # noqa: E402

BLOCKING = {"CRITICAL", "BEST_PRACTICE_VIOLATION", "PYNWB_VALIDATION", "ERROR"}


def blocking_messages(path: Path) -> list[str]:
    """The Inspector's messages at CRITICAL or BEST_PRACTICE_VIOLATION (or validation errors) for a file."""
    from nwbinspector import inspect_nwbfile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    return [f"{m.importance.name} {m.check_function_name} {m.object_name}: {m.message}" for m in messages
            if m.importance.name in BLOCKING]


@pytest.fixture(scope="module")
def two_stimuli(tmp_path_factory) -> Path:
    """The synthetic challenge on two stimuli, in a data folder's challenges/ (written once)."""
    return write_synthetic_challenge(tmp_path_factory.mktemp("data") / "challenges" / "two-stimuli", "two-stimuli",
                                     n_stimuli=2)


@pytest.mark.slow  # export and inspect 2 x 4 x 20 s at 2 kHz: about 8 s
def test_export_passes_the_inspector(two_stimuli, tmp_path):
    challenge = load_challenge(two_stimuli)
    path = export_nwb(challenge, tmp_path / "two.nwb")
    assert blocking_messages(path) == []
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        assert nwbfile.subject.sex == "U" and nwbfile.subject.subject_id == "two-stimuli"
        assert nwbfile.icephys_electrodes["electrode"].cell_id == "two-stimuli"
    # and import-nwb restores it
    back = load_challenge(import_nwb(path, tmp_path / "back", name="back"))
    assert back.manifest["reliability"] == challenge.manifest["reliability"]


@pytest.mark.slow  # two exports and inspections: about 10 s
def test_export_cli_takes_the_subject(two_stimuli, tmp_path, monkeypatch):
    monkeypatch.setenv("QSNMC_DATA_DIR", str(two_stimuli.parent.parent))
    out = tmp_path / "one.nwb"
    assert cli_main(["data", "export-nwb", "two-stimuli", str(out), "--species", "Rattus norvegicus", "--age", "P14D",
                     "--sex", "M"]) == 0
    assert blocking_messages(out) == []
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        subject = io.read().subject
        assert (subject.species, subject.age, subject.sex) == ("Rattus norvegicus", "P14D", "M")
    assert cli_main(["data", "export-nwb", "two-stimuli", str(tmp_path / "bad.nwb"), "--species", "rat"]) == 0
    assert any("check_subject_species_form" in m for m in blocking_messages(tmp_path / "bad.nwb"))


def write_tutorial_layout(path: Path, cells: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Current-clamp sweeps written the way pynwb's icephys tutorial writes its (voltage-clamp) ones."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    nwbfile = NWBFile(session_description="my first synthetic recording", identifier="EXAMPLE_ID",
                      session_start_time=datetime(2026, 1, 1, tzinfo=timezone.utc), experimenter=["Baggins, Bilbo"],
                      lab="Bag End Laboratory", institution="University of Middle Earth at the Shire",
                      experiment_description="frozen noise, repeated", session_id="LONELYMTN")
    nwbfile.subject = Subject(subject_id="001", species="Mus musculus", sex="M", age="P90D")
    device = nwbfile.create_device(name="Heka ITC-1600")
    electrode = nwbfile.create_icephys_electrode(name="elec0", description="a mock intracellular electrode",
                                                 device=device, cell_id="cell-1")
    sequential = []
    number = 0
    for name, (current, voltage) in cells.items():
        simultaneous = []
        for r in range(voltage.shape[0]):
            # the tutorial's series: data in the amplifier's unit, conversion to SI, a starting time, sweep numbers
            stimulus = CurrentClampStimulusSeries(
                name=f"ccss_{number}", data=current, starting_time=10.0 * number, rate=1 / DT_S, electrode=electrode,
                gain=0.02, conversion=1e-12, sweep_number=np.uint64(number))
            response = CurrentClampSeries(
                name=f"ccs_{number}", data=voltage[r], conversion=1e-3, resolution=np.nan,
                starting_time=10.0 * number, rate=1 / DT_S, electrode=electrode, gain=0.02, bias_current=0.0,
                bridge_balance=70e6, capacitance_compensation=1e-12, sweep_number=np.uint64(number))
            # add_intracellular_recording adds the series to the file itself (stimulus, acquisition)
            row = nwbfile.add_intracellular_recording(electrode=electrode, stimulus=stimulus, response=response,
                                                      id=100 + number)
            simultaneous.append(nwbfile.add_icephys_simultaneous_recording(recordings=[row], id=200 + number))
            number += 1
        sequential.append(nwbfile.add_icephys_sequential_recording(
            simultaneous_recordings=simultaneous, stimulus_type=f"frozen noise {name}", id=300 + len(sequential)))
    repetition = nwbfile.add_icephys_repetition(sequential_recordings=sequential, id=400)
    nwbfile.add_icephys_experimental_condition(repetitions=[repetition], id=500)
    nwbfile.icephys_experimental_conditions.add_column(name="tag", data=np.arange(1),
                                                       description="integer tag for an experimental condition")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwbfile)
    return path


def test_import_reads_pynwb_tutorial_layout(tmp_path):
    cells = {name: simulate_noisy_lif(6.0, 3, seed=seed) for name, seed in (("A", 3), ("B", 4))}
    path = write_tutorial_layout(tmp_path / "tutorial.nwb", cells)
    with pynwb.NWBHDF5IO(str(path), "r") as io:  # the series landed where the tutorial says they do
        nwbfile = io.read()
        assert sorted(nwbfile.stimulus) == [f"ccss_{k}" for k in range(6)]
        assert sorted(nwbfile.acquisition) == [f"ccs_{k}" for k in range(6)]
    challenge = load_challenge(import_nwb(path, tmp_path / "c", name="tutorial", train_until_s=4.0))
    assert [s.name for s in challenge.stimuli] == ["frozen_noise_A", "frozen_noise_B"]
    for stim, (current, voltage) in zip(challenge.stimuli, cells.values()):
        assert stim.n_repetitions == 3
        np.testing.assert_allclose(stim.current_pA, current, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(stim.train_voltage_mV, voltage[:, :8000], atol=1 / 256)
        spikes = spike_times_from_voltage(voltage, DT_S)
        assert [len(t) for t in stim.test_spikes_s] == [int(np.sum(t >= 4.0)) for t in spikes]
