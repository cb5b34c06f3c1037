"""Import the QSNMC 2007 Challenge A recordings as a multi-stimulus harness challenge.

Source layout (Jolivet, Schürmann, Berger, Naud, Gerstner & Roth 2008, "The quantitative
single-neuron modeling competition", Biol Cybern 99:417), each file plain or ``.gz``::

    training/NN-r.voltage      34,000 rows: sample index, current (pA), voltage (mV); 1 kHz
    training/NN-r.spiketimes   spike times (ms): one column, or two (time, a constant)
    test/NN-r.voltage          same, the voltage column hidden (all zeros)
    test/NN-r.spiketimes       the recorded test spike times (ms); absent for unanswered stimuli

``NN`` is the stimulus, ``r`` the repetition (0, 1, ...). The resulting challenge:

- every training stimulus has a training window over its whole trace, with voltage and
  the competition's spike times;
- every test stimulus with recorded spike times has a test window over its whole trace;
  its spike times go to ``hidden.npz`` only; a test stimulus without spike times is
  skipped (listed in the manifest's provenance);
- Delta = 2 ms (the 2007 setting); each test stimulus is scored against its own
  repetitions and normalised by its own R, and the challenge score averages the test
  stimuli with equal weight (see :mod:`qsnmc.scoring.evaluation`);
- the current of a stimulus is the mean of its repetitions' recorded currents (they
  differ by a few pA of measurement noise); the largest deviation is in the provenance.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from qsnmc.challenges.store import Challenge, ChallengeStimulus, sha256_file, write_challenge
from qsnmc.scoring.metrics import n_coincidences
from qsnmc.scoring.spikes import spike_times_from_voltage
from qsnmc.challenges.textdata import DataImportError, check_voltage_mV, current_in_pA, read_table, voltage_storage

#: sampling step of the 2007 files (s): the first column counts milliseconds
DT_S = 0.001
#: the 2007 coincidence window (s)
DELTA_S = 0.002
FILE_PATTERN = re.compile(r"^(?P<stim>\d+)-(?P<rep>\d+)\.(?P<kind>voltage|spiketimes)(?:\.gz)?$")
REFERENCE = "QSNMC 2007 Challenge A (Jolivet et al. 2008, Biol Cybern 99:417)"


def _scan(folder: Path) -> dict[str, dict[str, dict[int, Path]]]:
    """``{stimulus: {"voltage"|"spiketimes": {repetition: path}}}`` of one folder."""
    found: dict[str, dict[str, dict[int, Path]]] = defaultdict(lambda: {"voltage": {}, "spiketimes": {}})
    for path in sorted(folder.iterdir()):
        match = FILE_PATTERN.match(path.name)
        if not match or not path.is_file():
            continue
        files = found[match["stim"]][match["kind"]]
        rep = int(match["rep"])
        if rep in files:
            raise DataImportError(f"{folder}: both {files[rep].name} and {path.name} (plain and .gz?): keep one")
        files[rep] = path
    return dict(found)


def _check_repetitions(stim: str, files: dict[str, dict[int, Path]], folder: Path, need_spikes: bool) -> list[int]:
    reps = sorted(files["voltage"])
    if not reps:
        raise DataImportError(f"{folder}: stimulus {stim} has spike times but no .voltage files")
    if reps != list(range(len(reps))):
        raise DataImportError(
            f"{folder}: stimulus {stim}: repetitions {reps}, expected 0..{len(reps) - 1} without gaps"
        )
    spikes = sorted(files["spiketimes"])
    if (spikes or need_spikes) and spikes != reps:
        raise DataImportError(
            f"{folder}: stimulus {stim}: .voltage files for repetitions {reps} but .spiketimes for {spikes}: "
            "every repetition needs both"
        )
    return reps


def _read_trace(path: Path, n_rows: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(current as read, voltage in mV)`` of one ``.voltage`` file, checking the index column."""
    table = read_table(path, 3, n_rows=n_rows)
    index = table[:, 0]
    steps = np.diff(index)
    if index[0] != 0 or (steps.size and not np.all(steps == 1)):
        bad = 0 if index[0] != 0 else int(np.flatnonzero(steps != 1)[0]) + 1
        raise DataImportError(
            f"{path}: line {bad + 1}: expected sample index {bad} (one row per ms from 0), got {index[bad]:g}"
        )
    return table[:, 1], table[:, 2]


def _read_spikes(path: Path, duration_s: float) -> np.ndarray:
    """Spike times (s) of one ``.spiketimes`` file (ms, first column), checked sorted and inside the trace."""
    times = read_table(path, (1, 2), allow_empty=True)[:, :1].ravel() / 1000.0
    back = np.flatnonzero(np.diff(times) <= 0)
    if back.size:
        line, value = back[0] + 2, times[back[0] + 1] * 1e3
        raise DataImportError(f"{path}: line {line}: expected increasing spike times (ms), got {value:g}")
    outside = np.flatnonzero((times < 0) | (times > duration_s))
    if outside.size:
        raise DataImportError(
            f"{path}: line {outside[0] + 1}: spike time {times[outside[0]] * 1e3:g} ms "
            f"outside the trace 0-{duration_s * 1e3:g} ms"
        )
    return times


def _detector_agreement(voltage_mV: np.ndarray, trains: list[np.ndarray]) -> dict[str, Any]:
    """How the harness's 0 mV detector on the 1 kHz voltage compares with the competition's spike times."""
    detected = spike_times_from_voltage(voltage_mV, DT_S)
    matched = sum(n_coincidences(t, d, DELTA_S) for t, d in zip(trains, detected))
    offsets = []
    for t, d in zip(trains, detected):
        if t.size and d.size:
            k = np.searchsorted(d, t)
            before, after = d[np.clip(k - 1, 0, d.size - 1)], d[np.clip(k, 0, d.size - 1)]
            nearest = np.where(np.abs(before - t) <= np.abs(after - t), before, after)
            offsets.append((nearest - t)[np.abs(nearest - t) <= DELTA_S])
    offs = np.concatenate(offsets) if offsets else np.zeros(0)
    return {
        "detector_spike_counts": [int(d.size) for d in detected],
        "matched_within_delta": int(matched),
        "median_offset_ms": float(np.median(offs) * 1e3) if offs.size else None,
    }


def _stimulus_current(stim: str, currents: list[np.ndarray], unit: str | None, folder: Path) -> tuple[np.ndarray, dict]:
    raw = np.stack(currents)
    source = f"{folder}/{stim}-*.voltage (column 2)"
    per_rep = current_in_pA(raw, unit, source)
    mean = per_rep.mean(axis=0)
    deviation = np.abs(per_rep - mean)
    return mean, {
        "max_abs_deviation_pA": float(deviation.max()),
        "rms_deviation_pA": float(np.sqrt(np.mean(deviation**2))),
        "std_pA": float(mean.std()),
    }


def _import_folder(
    folder: Path, *, is_test: bool, unit: str | None, n_rows: int | None
) -> tuple[list[ChallengeStimulus], dict[str, Any], list[str], int | None]:
    """Parse ``training/`` or ``test/``: the stimuli, their provenance, skipped stimuli, rows per file."""
    stimuli, info, skipped = [], {}, []
    for stim, files in sorted(_scan(folder).items()):
        if is_test and not files["spiketimes"]:
            skipped.append(stim)
            continue
        reps = _check_repetitions(stim, files, folder, need_spikes=True)
        currents, voltages = [], []
        for r in reps:
            current, voltage = _read_trace(files["voltage"][r], n_rows)
            n_rows = current.size
            currents.append(current)
            voltages.append(voltage)
        duration = n_rows * DT_S
        trains = [_read_spikes(files["spiketimes"][r], duration) for r in reps]
        mean_current, current_info = _stimulus_current(stim, currents, unit, folder)
        window = (0.0, duration)
        entry: dict[str, Any] = {"repetitions": len(reps), "current": current_info}
        if is_test:
            stimuli.append(
                ChallengeStimulus(stim, DT_S, mean_current, len(reps), test_window_s=window, test_spikes_s=trains)
            )
        else:
            voltage = np.stack(voltages)
            check_voltage_mV(voltage, f"{folder}/{stim}-*.voltage (column 3)")
            entry["spike_times_vs_detector"] = _detector_agreement(voltage, trains)
            stimuli.append(
                ChallengeStimulus(
                    stim,
                    DT_S,
                    mean_current,
                    len(reps),
                    train_window_s=window,
                    train_voltage_mV=voltage,
                    train_spikes_s=trains,
                )
            )
        entry["spike_counts"] = [int(t.size) for t in trains]
        entry["files_sha256"] = {p.name: sha256_file(p)[:16] for kind in files.values() for p in kind.values()}
        info[stim] = entry
    return stimuli, info, skipped, n_rows


def _source_root(src_dir: Path) -> Path:
    if (src_dir / "training").is_dir():
        return src_dir
    if (src_dir / "challengeA" / "training").is_dir():
        return src_dir / "challengeA"
    raise DataImportError(f"{src_dir}: expected a QSNMC 2007 Challenge A folder with training/ and test/ subfolders")


def import_qsnmc2007(
    src_dir: str | Path, dest_dir: str | Path, *, name: str = "qsnmc2007a", current_unit: str | None = None
) -> Path:
    """Import a QSNMC 2007 Challenge A folder into a harness challenge at ``dest_dir``.

    Everything is parsed and checked before anything is written; the challenge folder is
    then written atomically (replacing ``dest_dir`` if it exists), so an error leaves
    nothing behind.

    Args:
        src_dir: the folder holding ``training/`` and ``test/`` (or its parent ``challengeA/``).
        dest_dir: the challenge folder to write.
        name: the challenge's name.
        current_unit: ``"pA"`` or ``"nA"`` to state the current's unit; None assumes pA and
            refuses an implausible amplitude.

    Returns:
        ``dest_dir`` as a Path.

    Raises:
        DataImportError: a missing, truncated, malformed, mismatched or implausible file,
            naming the file, the line and what was expected.
    """
    root = _source_root(Path(src_dir).resolve())
    if not (root / "test").is_dir():
        raise DataImportError(f"{root}: no test/ folder")
    train, train_info, _, n_rows = _import_folder(root / "training", is_test=False, unit=current_unit, n_rows=None)
    test, test_info, skipped, _ = _import_folder(root / "test", is_test=True, unit=current_unit, n_rows=n_rows)
    if not train:
        raise DataImportError(f"{root / 'training'}: no NN-r.voltage / NN-r.spiketimes files")
    if not test:
        raise DataImportError(f"{root / 'test'}: no test stimulus with NN-r.spiketimes files")
    both = sorted({s.name for s in train} & {s.name for s in test})
    if both:
        raise DataImportError(f"{root}: stimuli {both} are in both training/ and test/")
    lsb, rounding = voltage_storage(np.concatenate([s.train_voltage_mV.ravel() for s in train]))
    duration = n_rows * DT_S
    description = (
        f"{REFERENCE}, a real cortical neuron: fit on {len(train)} training stimuli, "
        f"predict {len(test)} test stimuli ({duration:g} s each, 1 kHz, the competition's recorded test spike "
        f"times); Delta = {DELTA_S * 1e3:g} ms; score = mean over test stimuli of Gamma/R (equal weight)"
    )
    provenance = {
        "source": REFERENCE,
        "source_dir": str(root),
        "importer": "qsnmc.challenges.qsnmc2007",
        "sampling": f"{1 / DT_S:g} Hz (first column: sample index in ms)",
        "current": "mean of each stimulus' repetitions' recorded currents (per-stimulus deviations below)",
        "current_unit": f"{current_unit} (given)" if current_unit else "pA (assumed; amplitude plausible)",
        "spike_times": "the competition's .spiketimes files (ms, converted to s), training and test alike",
        "delta_s": DELTA_S,
        "scoring": "each test stimulus against its own repetitions, normalised by its own R; stimuli weighted equally",
        "voltage_storage": (
            f"int16 counts of {lsb} mV (largest rounding error {rounding:.2g} mV)" if lsb else "float32"
        ),
        "training": train_info,
        "test": test_info,
        "skipped_test_stimuli": {s: "no .spiketimes files (no published answers)" for s in skipped},
    }
    challenge = Challenge(name=name, stimuli=train + test, delta_s=DELTA_S, threshold_mV=0.0, description=description)
    return write_challenge(dest_dir, challenge, voltage_lsb_mV=lsb, provenance=provenance)
