"""A challenge from acquisition files read with Neo: sweeps grouped into stimuli, listed, checked, written.

:func:`find_stimuli` groups the sweeps :func:`~qsnmc.challenges.neo_import.read_sweeps` read
into stimuli by their current (:mod:`qsnmc.challenges.repetitions`) and detects spikes (the
harness's rule); :func:`listing` is what the importer prints before writing (and all a dry
run does); :func:`check_importable` refuses recordings without spikes or without a repeated
stimulus; :func:`write_neo` splits and writes them as every importer does
(:func:`~qsnmc.challenges.recorded.write_recorded`). A stimulus of one repetition has no R:
it is training-only, and the manifest's ``provenance["stimuli"][NAME]["test_excluded"]``
says so.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qsnmc.challenges.neo_import import Sweep, read_sweeps
from qsnmc.challenges.recorded import detect_trains, source_of, spike_rule, write_recorded
from qsnmc.challenges.repetitions import ABS_TOL_PA, BIN_S, REL_TOL_SD, group_repetitions
from qsnmc.challenges.split import Recording, Split
from qsnmc.challenges.textdata import DataImportError

IMPORTER = "qsnmc.challenges.neo_challenge"
ONE_REPETITION = "1 repetition: R needs 2 (training only)"


def repetition_rule(abs_tol_pA: float, rel_tol_sd: float) -> str:
    """The rule that made sweeps repetitions, as listed and kept in the manifest."""
    return (f"same current: max |difference| of {BIN_S * 1e3:g} ms means <= max({abs_tol_pA:g} pA, "
            f"{rel_tol_sd:g} x the first sweep's current SD)")


def find_stimuli(
    sweeps: Sequence[Sweep], *, threshold_mV: float = 0.0, abs_tol_pA: float = ABS_TOL_PA,
    rel_tol_sd: float = REL_TOL_SD,
) -> list[Recording]:
    """The stimuli among ``sweeps`` (named S1, S2, ... in the order of their first sweep), spikes detected.

    Each stimulus' current is the mean of its repetitions' currents (pA); its ``info`` lists
    the sweeps, the spike counts, the largest current difference and the tolerance.
    """
    dt = sweeps[0].dt_s
    groups = group_repetitions([s.current_pA for s in sweeps], dt, abs_tol_pA=abs_tol_pA, rel_tol_sd=rel_tol_sd)
    recordings = []
    for k, group in enumerate(groups):
        members = [sweeps[i] for i in group.members]
        name = f"S{k + 1}"
        voltage = np.stack([s.voltage_mV for s in members])
        current = np.mean([s.current_pA for s in members], axis=0)
        trains = detect_trains(voltage, dt, threshold_mV, f"{members[0].file}: stimulus {name}")
        info: dict[str, Any] = {
            "sweeps": [s.label for s in members], "sweep_numbers": [s.number for s in members],
            "repetitions": len(members), "spike_counts": [int(t.size) for t in trains],
            "spike_times": spike_rule(threshold_mV), "current": f"mean of the {len(members)} repetitions' currents",
            "max_current_difference_pA": round(group.max_difference_pA, 3),
            "current_tolerance_pA": round(group.tolerance_pA, 3),
        }
        if len(members) < 2:
            info["test_excluded"] = ONE_REPETITION
        recordings.append(Recording(name, dt, current, voltage, trains, info))
    return recordings


def _ranges(numbers: Sequence[int]) -> str:
    parts, start = [], None
    for k, n in enumerate(numbers):
        if start is None:
            start = n
        if k + 1 == len(numbers) or numbers[k + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ",".join(parts)


def listing(recordings: Sequence[Recording], facts: dict[str, Any], abs_tol_pA: float, rel_tol_sd: float) -> str:
    """What the importer found, printed before anything is written: files, channels, then one row per stimulus."""
    from tabulate import tabulate

    lines = []
    for f in facts["files"]:
        current = f.get("current_channel") or "protocol command (--current-from-protocol)"
        lines.append(f"{f['file']}: {f['sweeps']} sweeps ({f['reader']}); voltage {f['voltage_channel']}, "
                     f"current {current}")
    n = sum(len(r.trains) for r in recordings)
    dt = recordings[0].dt_s
    lines.append(f"{n} sweeps of {recordings[0].duration_s:g} s at {1 / dt:g} Hz (--sweeps {facts['sweeps_selected']});"
                 f" repetitions: {repetition_rule(abs_tol_pA, rel_tol_sd)}")
    rows = [[r.name, _ranges(r.info["sweep_numbers"]), r.info["repetitions"],
             " ".join(str(c) for c in r.info["spike_counts"]),
             f"{float(np.mean(r.current_pA)):.4g} / {float(np.std(r.current_pA)):.4g}",
             f"{r.info['max_current_difference_pA']:.3g} (<= {r.info['current_tolerance_pA']:.3g})"
             if r.info["repetitions"] > 1 else "-"]
            for r in recordings]
    lines += ["", tabulate(rows, headers=["stimulus", "sweeps", "reps", "spikes per sweep", "current mean / SD (pA)",
                                          "largest difference (pA)"], disable_numparse=True), ""]
    repeated = [r.name for r in recordings if r.info["repetitions"] >= 2]
    plural = "us" if len(recordings) == 1 else "i"
    lines.append(f"{len(recordings)} stimul{plural}; {len(repeated)} with 2 or more repetitions (R possible)"
                 + (f": {', '.join(repeated)}" if repeated else "")
                 + ("; the others are training-only" if repeated and len(repeated) < len(recordings) else ""))
    return "\n".join(lines)


def check_importable(recordings: Sequence[Recording], files: Sequence[Path], threshold_mV: float) -> None:
    """Refuse recordings that cannot make a challenge: no spikes at all, or no stimulus repeated.

    Raises:
        DataImportError: naming the files and the problem.
    """
    where = ", ".join(str(f) for f in files)
    n = sum(len(r.trains) for r in recordings)
    if not any(t.size for r in recordings for t in r.trains):
        raise DataImportError(f"{where}: no spikes: no upward crossing of {threshold_mV:g} mV in any of the {n} sweeps "
                              "(is --voltage-channel the membrane voltage? is --threshold-mv right?)")
    if not any(r.info["repetitions"] >= 2 for r in recordings):
        raise DataImportError(f"{where}: no repeated stimulus: each of the {len(recordings)} stimuli found has one "
                              "sweep, and R needs 2 repetitions of one current (record repeats of a frozen stimulus, "
                              "or loosen --current-tolerance)")


def write_neo(
    recordings: Sequence[Recording], facts: dict[str, Any], files: Sequence[Path], dest_dir: str | Path, *,
    name: str, split: Split, threshold_mV: float, abs_tol_pA: float, rel_tol_sd: float,
) -> Path:
    """Split the stimuli found and write the challenge atomically (the manifest names every file and its sha256)."""
    import neo

    paths = [Path(f).resolve() for f in files]
    current_files = [f["current_file"] for f in facts["files"] if "current_file" in f]
    sources = [source_of(p) for p in [*paths, *map(Path, current_files)]]
    provenance = {
        **sources[0],
        "source": f"{', '.join(p.name for p in paths)} read with Neo {neo.__version__}",
        "source_files": sources,
        "importer": IMPORTER,
        "neo": {k: v for k, v in facts.items() if k != "sweep_numbers"},
        "units": "converted from the files' units to mV and pA (quantities); sampling step from the files' rate",
        "repetitions": repetition_rule(abs_tol_pA, rel_tol_sd),
    }
    return write_recorded(dest_dir, name=name, recordings=recordings, split=split, threshold_mV=threshold_mV,
                          provenance=provenance, description=f"recordings of {', '.join(p.name for p in paths)} (Neo)")


def import_neo(
    files: Sequence[str | Path],
    dest_dir: str | Path,
    *,
    name: str,
    voltage_channel: str | None = None,
    current_channel: str | None = None,
    current_files: Sequence[str | Path] = (),
    current_from_protocol: bool = False,
    sweeps: str | None = None,
    train_until_s: float | None = None,
    test_stimuli: Sequence[str] = (),
    r_floor: float = 0.3,
    delta_ms: float = 4.0,
    threshold_mV: float = 0.0,
    abs_tol_pA: float = ABS_TOL_PA,
    rel_tol_sd: float = REL_TOL_SD,
) -> Path:
    """Read, group, check and write in one call (the CLI does the same steps, printing :func:`listing` between).

    Args:
        files, voltage_channel, current_channel, current_files, current_from_protocol, sweeps:
            what to read (see :func:`~qsnmc.challenges.neo_import.read_sweeps`).
        dest_dir: the challenge folder to write (replaced if it exists; nothing written on an error).
        name: the challenge's name.
        train_until_s, test_stimuli, r_floor: the split (see :mod:`qsnmc.challenges.split`).
        delta_ms: coincidence window (ms).
        threshold_mV: spike threshold (mV).
        abs_tol_pA, rel_tol_sd: the repetition rule (see :mod:`qsnmc.challenges.repetitions`).

    Raises:
        DataImportError: unreadable files, bad channels or units, no spikes, no repeated
            stimulus, or a split that leaves no training or no test data.
    """
    found, facts = read_sweeps(files, voltage_channel=voltage_channel, current_channel=current_channel,
                               current_files=current_files, current_from_protocol=current_from_protocol, sweeps=sweeps)
    recordings = find_stimuli(found, threshold_mV=threshold_mV, abs_tol_pA=abs_tol_pA, rel_tol_sd=rel_tol_sd)
    del found  # the stimuli hold copies (peak memory)
    check_importable(recordings, [Path(f) for f in files], threshold_mV)
    split = Split(train_until_s, tuple(test_stimuli), float(r_floor), float(delta_ms) / 1e3)
    return write_neo(recordings, facts, [Path(f) for f in files], dest_dir, name=name, split=split,
                     threshold_mV=threshold_mV, abs_tol_pA=abs_tol_pA, rel_tol_sd=rel_tol_sd)
