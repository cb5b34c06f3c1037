"""One cell's acquisition files for import-neo: training files, test files and an AEC sweep, read together.

The GIF protocol (Pozzorini et al. 2015) records a cell in three files: a long training
sweep, a frozen current repeated for the test, and a sweep of small noise for electrode
compensation. :func:`read_cell` reads them with one set of channel options
(:func:`~qsnmc.challenges.neo_import.read_sweeps`), checks they come from one recording
session (:func:`~qsnmc.challenges.neo_import.check_one_session`), marks which sweeps are
for the test, and estimates the electrode from the AEC sweep
(:mod:`qsnmc.challenges.aec`). The AEC sweep is not part of the challenge.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qsnmc.challenges.aec import ElectrodeKernel, estimate_electrode
from qsnmc.challenges.neo_import import Sweep, check_one_session, read_sweeps
from qsnmc.challenges.textdata import DataImportError
from qsnmc.scoring.spikes import spike_times_from_voltage

#: default longest pause (s) between the files of one cell (end of one, start of the next)
SESSION_GAP_S = 300.0
#: an AEC sweep's voltage left out of the electrode's fit around each spike (s before, s after), and
#: the largest share of the sweep that may be left out
AEC_SPIKE_S = (0.005, 0.1)
AEC_MAX_EXCLUDED = 0.2


@dataclass
class Cell:
    """What :func:`read_cell` read: the sweeps, which are for the test, the electrode, and the facts.

    Attributes:
        sweeps: the selected sweeps of the training and test files, numbered from 1 across them.
        test_numbers: the numbers of the sweeps that come from a test file.
        electrode: the electrode kernel from the AEC sweep, or None without ``--aec``.
        facts: what was read, for the listing and the manifest.
    """

    sweeps: list[Sweep]
    test_numbers: set[int] = field(default_factory=set)
    electrode: ElectrodeKernel | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def _distinct(files: Sequence[Path], test_files: Sequence[Path], aec_file: Path | None) -> None:
    """Refuse a file given twice (for training, for the test or for the AEC)."""
    seen: dict[Path, str] = {}
    for role, group in (("FILE", files), ("--test-files", test_files), ("--aec", [aec_file] if aec_file else [])):
        for f in group:
            if f in seen:
                raise DataImportError(f"{f}: given twice (as {seen[f]} and as {role}): a file is for training, "
                                      "for the test, or for the AEC")
            seen[f] = role


def read_aec(path: Path, dt_s: float, threshold_mV: float, **channels: Any) -> tuple[ElectrodeKernel, dict[str, Any]]:
    """The electrode kernel from the one sweep of an AEC file, read with the same channel options.

    Spikes in it (upward crossings of ``threshold_mV``) are left out of the fit with the
    :data:`AEC_SPIKE_S` around them.

    Raises:
        DataImportError: not one sweep, another sampling rate, so many spikes that more than
            :data:`AEC_MAX_EXCLUDED` of it would be left out, or no kernel fits.
    """
    sweeps, facts = read_sweeps([path], **channels)
    if len(sweeps) != 1:
        raise DataImportError(f"{path}: --aec: {len(sweeps)} sweeps; the AEC file holds one sweep of small noise")
    (aec,) = sweeps
    if abs(aec.dt_s - dt_s) > 1e-9 * dt_s:
        raise DataImportError(f"{path}: --aec: sampled at {1 / aec.dt_s:g} Hz, the recordings at {1 / dt_s:g} Hz")
    spikes = spike_times_from_voltage(aec.voltage_mV, aec.dt_s, threshold_mV)
    excluded = np.zeros(aec.voltage_mV.size, bool)
    for t in spikes:  # a spike's voltage is no electrode's or membrane's linear response: left out of the fit
        excluded[max(0, int((t - AEC_SPIKE_S[0]) / aec.dt_s)):int((t + AEC_SPIKE_S[1]) / aec.dt_s) + 1] = True
    if excluded.mean() > AEC_MAX_EXCLUDED:
        raise DataImportError(f"{path}: --aec: {spikes.size} spikes (upward crossings of {threshold_mV:g} mV) leave "
                              f"{(1 - excluded.mean()) * 100:.0f} % of the sweep below threshold: the AEC sweep is "
                              "small subthreshold noise")
    try:
        electrode = estimate_electrode(aec.current_pA, aec.voltage_mV, aec.dt_s, excluded)
    except DataImportError as exc:
        raise DataImportError(f"{path}: --aec: {exc}") from exc
    return electrode, facts["files"][0]


def read_cell(
    files: Sequence[str | Path],
    *,
    test_files: Sequence[str | Path] = (),
    aec_file: str | Path | None = None,
    session_gap_s: float = SESSION_GAP_S,
    threshold_mV: float = 0.0,
    voltage_channel: str | None = None,
    current_channel: str | None = None,
    current_files: Sequence[str | Path] = (),
    current_from_protocol: bool = False,
    sweeps: str | None = None,
) -> Cell:
    """Read a cell's training ``files``, ``test_files`` and AEC file (see the module docstring).

    Sweeps are numbered from 1 across ``files`` then ``test_files``; ``sweeps`` selects
    among them; the channel options apply to every file.

    Raises:
        DataImportError: a file given twice, files recorded more than ``session_gap_s`` apart,
            a bad AEC file, or anything :func:`~qsnmc.challenges.neo_import.read_sweeps` refuses.
    """
    paths = [Path(f).resolve() for f in files]
    tests = [Path(f).resolve() for f in test_files]
    aec = Path(aec_file).resolve() if aec_file is not None else None
    _distinct(paths, tests, aec)
    if not (np.isfinite(session_gap_s) and session_gap_s >= 0):
        raise DataImportError(f"--session-gap {session_gap_s / 60:g}: expected minutes >= 0")
    channels = {"voltage_channel": voltage_channel, "current_channel": current_channel,
                "current_from_protocol": current_from_protocol}
    read, facts = read_sweeps([*paths, *tests], current_files=current_files, sweeps=sweeps, **channels)
    for per in facts["files"]:
        per["role"] = "test" if Path(per["file"]) in tests else "training"
    cell = Cell(read, {s.number for s in read if s.file in tests}, None, facts)
    if tests and not cell.test_numbers:
        names = ", ".join(t.name for t in tests)
        raise DataImportError(f"--sweeps {sweeps}: selects no sweep of the test files ({names})")
    if tests and len(cell.test_numbers) == len(read):
        raise DataImportError(f"--sweeps {sweeps}: selects no sweep of the training files")
    dated = list(facts["files"])
    if aec is not None:
        cell.electrode, aec_facts = read_aec(aec, read[0].dt_s, threshold_mV, **channels)
        dated.append({**aec_facts, "role": "aec"})
        facts["aec"] = {"file": str(aec), **cell.electrode.describe()}
    session = check_one_session(dated, session_gap_s)
    if session:
        facts["session"] = session
    facts["test_files"] = [str(t) for t in tests]
    return cell
