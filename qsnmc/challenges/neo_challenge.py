"""A challenge from acquisition files read with Neo: sweeps grouped into stimuli, listed, checked, written.

:func:`find_stimuli` groups the sweeps :func:`~qsnmc.challenges.neo_import.read_sweeps` read
into stimuli by their current (:mod:`qsnmc.challenges.repetitions`; the sweeps of test files
among themselves) and detects spikes (the harness's rule) in the recorded voltage, keeping the
electrode-compensated voltage where an AEC sweep was given (:mod:`qsnmc.challenges.aec`);
:func:`listing` is what the importer prints before writing, with :func:`split_preview` all a
dry run does; :func:`check_importable` refuses recordings without spikes, without a repeated
stimulus or with a test file that does not repeat; :func:`write_neo` splits and writes them
as every importer does (:func:`~qsnmc.challenges.recorded.write_recorded`). A stimulus of one
repetition has no R: it is training-only, and the manifest's
``provenance["stimuli"][NAME]["test_excluded"]`` says so.
"""
from __future__ import annotations

from pathlib import Path
from typing import AbstractSet, Any, Sequence

import numpy as np

from qsnmc.challenges.aec import ElectrodeKernel
from qsnmc.challenges.neo_cell import SESSION_GAP_S, read_cell
from qsnmc.challenges.neo_import import Sweep
from qsnmc.challenges.recorded import detect_trains, source_of, spike_rule, write_recorded
from qsnmc.challenges.repetitions import ABS_TOL_PA, BIN_S, REL_TOL_SD, Group, group_repetitions
from qsnmc.challenges.split import Recording, Split, split_recordings
from qsnmc.challenges.textdata import DataImportError

IMPORTER = "qsnmc.challenges.neo_challenge"
ONE_REPETITION = "1 repetition: R needs 2 (training only)"


def repetition_rule(abs_tol_pA: float, rel_tol_sd: float) -> str:
    """The rule that made sweeps repetitions, as listed and kept in the manifest."""
    return (f"same current: max |difference| of {BIN_S * 1e3:g} ms means <= max({abs_tol_pA:g} pA, "
            f"{rel_tol_sd:g} x the first sweep's current SD)")


def _groups(sweeps: Sequence[Sweep], test_numbers: AbstractSet[int], abs_tol_pA: float,
            rel_tol_sd: float) -> list[tuple[list[Sweep], Group, bool]]:
    """The stimuli's sweeps, grouped apart for training and test files, in the order of their first sweep."""
    parts = [[s for s in sweeps if s.number not in test_numbers], [s for s in sweeps if s.number in test_numbers]]
    found = []
    for is_test, part in zip((False, True), parts):
        if part:
            groups = group_repetitions([s.current_pA for s in part], part[0].dt_s, abs_tol_pA=abs_tol_pA,
                                       rel_tol_sd=rel_tol_sd)
            found += [([part[i] for i in g.members], g, is_test) for g in groups]
    return sorted(found, key=lambda item: item[0][0].number)


def find_stimuli(
    sweeps: Sequence[Sweep], *, threshold_mV: float = 0.0, abs_tol_pA: float = ABS_TOL_PA,
    rel_tol_sd: float = REL_TOL_SD, test_numbers: AbstractSet[int] = frozenset(),
    electrode: ElectrodeKernel | None = None,
) -> list[Recording]:
    """The stimuli among ``sweeps`` (named S1, S2, ... in the order of their first sweep), spikes detected.

    Each stimulus' current is the mean of its repetitions' recorded currents (pA); its
    ``info`` lists the sweeps, the spike counts, the largest current difference and the
    tolerance. Sweeps of test files (``test_numbers``) are grouped among themselves only; where
    there are any, each stimulus' ``info["role"]`` says ``"test"`` or ``"training"``. Spikes
    are detected in the recorded voltage; with an ``electrode``, the voltage kept is the
    compensated one (each sweep minus the electrode's response to its own current).
    """
    dt = sweeps[0].dt_s
    recordings = []
    for k, (members, group, is_test) in enumerate(_groups(sweeps, test_numbers, abs_tol_pA, rel_tol_sd)):
        name = f"S{k + 1}"
        voltage = np.stack([s.voltage_mV for s in members])
        current = np.mean([s.current_pA for s in members], axis=0)
        trains = detect_trains(voltage, dt, threshold_mV, f"{members[0].file}: stimulus {name}")
        if electrode is not None:
            voltage = np.stack([electrode.compensate(s.voltage_mV, s.current_pA) for s in members])
        info: dict[str, Any] = {
            "sweeps": [s.label for s in members], "sweep_numbers": [s.number for s in members],
            "repetitions": len(members), "duration_s": round(current.size * dt, 9),
            **({"role": "test" if is_test else "training"} if test_numbers else {}),
            "spike_counts": [int(t.size) for t in trains],
            "spike_times": spike_rule(threshold_mV), "current": f"mean of the {len(members)} repetitions' currents",
            "max_current_difference_pA": round(group.max_difference_pA, 3),
            "current_tolerance_pA": round(group.tolerance_pA, 3),
        }
        if electrode is not None:
            info["voltage"] = "electrode-compensated (AEC): each sweep minus the electrode's response to its current"
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


def _lengths(recordings: Sequence[Recording]) -> str:
    """``"3 sweeps of 10 s"``, or ``"11 sweeps (1 of 60 s, 10 of 10 s)"`` where they differ."""
    counts: dict[float, int] = {}
    for r in recordings:
        counts[round(r.duration_s, 9)] = counts.get(round(r.duration_s, 9), 0) + len(r.trains)
    n = sum(counts.values())
    if len(counts) == 1:
        return f"{n} sweeps of {next(iter(counts)):g} s"
    return f"{n} sweeps ({', '.join(f'{c} of {d:g} s' for d, c in counts.items())})"


def _file_lines(facts: dict[str, Any]) -> list[str]:
    lines = []
    for f in facts["files"]:
        current = f.get("current_channel") or "protocol command (--current-from-protocol)"
        role = " [test file]" if f.get("role") == "test" else ""
        lines.append(f"{f['file']}{role}: {f['sweeps']} sweeps ({f['reader']}); voltage {f['voltage_channel']}, "
                     f"current {current}")
    aec = facts.get("aec")
    if aec:
        fit = aec["membrane_fit"]
        lines.append(f"{aec['file']} [AEC]: electrode R_e = {aec['electrode_resistance_MOhm']:.3g} MOhm (halves of the "
                     f"sweep: {' and '.join(f'{r:.3g}' for r in aec['electrode_resistance_halves_MOhm'])}); membrane "
                     f"tail tau {fit['tau_ms']:.3g} ms (R^2 {fit['r2']:.3f}); kernel explains "
                     f"{aec['aec_voltage_r2']:.3f} of the AEC voltage's variance; models get V_rec - K_e * I, "
                     "spikes come from V_rec")
    if facts.get("session"):
        lines.append(f"recording times: {facts['session']}")
    return lines


def listing(recordings: Sequence[Recording], facts: dict[str, Any], abs_tol_pA: float, rel_tol_sd: float) -> str:
    """What the importer found, printed before anything is written: files, channels, then one row per stimulus."""
    from tabulate import tabulate

    lines = _file_lines(facts)
    dt = recordings[0].dt_s
    lines.append(f"{_lengths(recordings)} at {1 / dt:g} Hz (--sweeps {facts['sweeps_selected']}); repetitions: "
                 f"{repetition_rule(abs_tol_pA, rel_tol_sd)}")
    rows = [[r.name, _ranges(r.info["sweep_numbers"]), r.info["repetitions"],
             " ".join(str(c) for c in r.info["spike_counts"]),
             f"{float(np.mean(r.current_pA)):.4g} / {float(np.std(r.current_pA)):.4g}",
             f"{r.info['max_current_difference_pA']:.3g} (<= {r.info['current_tolerance_pA']:.3g})"
             if r.info["repetitions"] > 1 else "-", f"{r.duration_s:g}", r.info.get("role", "-")]
            for r in recordings]
    headers = ["stimulus", "sweeps", "reps", "spikes per sweep", "current mean / SD (pA)", "largest difference (pA)",
               "length (s)", "file"]
    if len({round(r.duration_s, 9) for r in recordings}) == 1 and not facts.get("test_files"):
        headers, rows = headers[:-2], [row[:-2] for row in rows]  # one length, no test file: nothing to tell apart
    lines += ["", tabulate(rows, headers=headers, disable_numparse=True), ""]
    repeated = [r.name for r in recordings if r.info["repetitions"] >= 2]
    plural = "us" if len(recordings) == 1 else "i"
    lines.append(f"{len(recordings)} stimul{plural}; {len(repeated)} with 2 or more repetitions (R possible)"
                 + (f": {', '.join(repeated)}" if repeated else "")
                 + ("; the others are training-only" if repeated and len(repeated) < len(recordings) else ""))
    return "\n".join(lines)


def stimuli_from_test_files(recordings: Sequence[Recording]) -> tuple[str, ...]:
    """The stimuli found in test files (held out whole for the test)."""
    return tuple(r.name for r in recordings if r.info.get("role") == "test")


def split_preview(recordings: Sequence[Recording], split: Split) -> str:
    """The windows and R the challenge would have, one line per stimulus (what a dry run shows of the split).

    Raises:
        DataImportError: a split the recordings cannot take (as the write would).
    """
    stimuli, tested, reliability = split_recordings(recordings, split)
    lines = ["would write:"]
    for s in stimuli:
        train = "-" if s.train_window_s is None else f"{s.train_window_s[0]:g}-{s.train_window_s[1]:g} s"
        test = "-" if s.test_window_s is None else f"{s.test_window_s[0]:g}-{s.test_window_s[1]:g} s"
        r = f", R = {reliability[s.name]:.3f}" if s.name in tested else ""
        lines.append(f"  {s.name}: {s.n_repetitions} repetition{'s' * (s.n_repetitions != 1)}, training window "
                     f"{train}, test window {test}{r}")
    lines.append(f"  Delta = {split.delta_s * 1e3:g} ms; tested: {', '.join(tested)}")
    return "\n".join(lines)


def check_importable(recordings: Sequence[Recording], files: Sequence[Path], threshold_mV: float) -> None:
    """Refuse recordings that cannot make a challenge: no spikes at all, no stimulus repeated, or a
    test file whose sweeps do not repeat one stimulus.

    Raises:
        DataImportError: naming the files and the problem.
    """
    where = ", ".join(str(f) for f in files)
    n = sum(len(r.trains) for r in recordings)
    if not any(t.size for r in recordings for t in r.trains):
        raise DataImportError(f"{where}: no spikes: no upward crossing of {threshold_mV:g} mV in any of the {n} sweeps "
                              "(is --voltage-channel the membrane voltage? is --threshold-mv right?)")
    single = [r for r in recordings if r.info.get("role") == "test" and r.info["repetitions"] < 2]
    if single:
        sweeps = ", ".join(r.info["sweeps"][0] for r in single)
        raise DataImportError(f"--test-files: {sweeps} repeat{'s' * (len(single) == 1)} no other sweep's current: a "
                              "test file holds repetitions of one frozen current (2 or more: R needs them); loosen "
                              "--current-tolerance if they are repetitions")
    if not any(r.info["repetitions"] >= 2 for r in recordings):
        raise DataImportError(f"{where}: no repeated stimulus: each of the {len(recordings)} stimuli found has one "
                              "sweep, and R needs 2 repetitions of one current (record repeats of a frozen stimulus, "
                              "or loosen --current-tolerance)")


def write_neo(
    recordings: Sequence[Recording], facts: dict[str, Any], files: Sequence[Path], dest_dir: str | Path, *,
    name: str, split: Split, threshold_mV: float, abs_tol_pA: float, rel_tol_sd: float,
) -> Path:
    """Split the stimuli found and write the challenge atomically (the manifest names every file and its sha256).

    ``files`` are the voltage files in the order read (training files, then test files);
    the current files and the AEC file in ``facts`` are named too.
    """
    import neo

    paths = [Path(f).resolve() for f in files]
    current_files = [f["current_file"] for f in facts["files"] if "current_file" in f]
    aec = [Path(facts["aec"]["file"])] if facts.get("aec") else []
    sources = [source_of(p) for p in [*paths, *map(Path, current_files), *aec]]
    provenance = {
        **sources[0],
        "source": f"{', '.join(p.name for p in [*paths, *aec])} read with Neo {neo.__version__}",
        "source_files": sources,
        "importer": IMPORTER,
        "neo": {k: v for k, v in facts.items() if k != "sweep_numbers"},
        "units": "converted from the files' units to mV and pA (quantities); sampling step from the files' rate",
        "repetitions": repetition_rule(abs_tol_pA, rel_tol_sd),
        "current": "each stimulus' current is the mean of its repetitions' recorded (or protocol) currents",
        "voltage": "electrode-compensated (AEC, provenance neo.aec); spikes detected in the recorded voltage"
                   if aec else "as recorded (no electrode compensation)",
    }
    compensated = f", electrode-compensated with {aec[0].name}" if aec else ""
    return write_recorded(dest_dir, name=name, recordings=recordings, split=split, threshold_mV=threshold_mV,
                          provenance=provenance,
                          description=f"recordings of {', '.join(p.name for p in paths)} (Neo{compensated})")


def import_neo(
    files: Sequence[str | Path],
    dest_dir: str | Path,
    *,
    name: str,
    test_files: Sequence[str | Path] = (),
    aec_file: str | Path | None = None,
    session_gap_s: float = SESSION_GAP_S,
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
        files, test_files, aec_file, session_gap_s, voltage_channel, current_channel,
            current_files, current_from_protocol, sweeps: what to read (see
            :func:`~qsnmc.challenges.neo_cell.read_cell`); the stimuli of ``test_files`` are
            held out whole for the test.
        dest_dir: the challenge folder to write (replaced if it exists; nothing written on an error).
        name: the challenge's name.
        train_until_s, test_stimuli, r_floor: the split (see :mod:`qsnmc.challenges.split`).
        delta_ms: coincidence window (ms).
        threshold_mV: spike threshold (mV).
        abs_tol_pA, rel_tol_sd: the repetition rule (see :mod:`qsnmc.challenges.repetitions`).

    Raises:
        DataImportError: unreadable files, bad channels or units, files of more than one
            session, a bad AEC sweep, no spikes, no repeated stimulus, a test file without
            repetitions, or a split that leaves no training or no test data.
    """
    cell = read_cell(files, test_files=test_files, aec_file=aec_file, session_gap_s=session_gap_s,
                     threshold_mV=threshold_mV, voltage_channel=voltage_channel, current_channel=current_channel,
                     current_files=current_files, current_from_protocol=current_from_protocol, sweeps=sweeps)
    recordings = find_stimuli(cell.sweeps, threshold_mV=threshold_mV, abs_tol_pA=abs_tol_pA, rel_tol_sd=rel_tol_sd,
                              test_numbers=cell.test_numbers, electrode=cell.electrode)
    cell.sweeps = []  # the stimuli hold copies (peak memory)
    read = [*files, *test_files]
    check_importable(recordings, [Path(f) for f in read], threshold_mV)
    held_out = tuple(dict.fromkeys([*test_stimuli, *stimuli_from_test_files(recordings)]))
    split = Split(train_until_s, held_out, float(r_floor), float(delta_ms) / 1e3)
    return write_neo(recordings, cell.facts, [Path(f) for f in read], dest_dir, name=name, split=split,
                     threshold_mV=threshold_mV, abs_tol_pA=abs_tol_pA, rel_tol_sd=rel_tol_sd)
