"""Import the QSNMC 2007 Challenge A recordings as a harness challenge, from recorded data only.

Source layout (Jolivet, Schürmann, Berger, Naud, Gerstner & Roth 2008, "The quantitative
single-neuron modeling competition", Biol Cybern 99:417), each file plain or ``.gz``::

    training/NN-r.voltage      34,000 rows: sample index, current (pA), voltage (mV); 1 kHz
    training/NN-r.spiketimes   recorded spike times (ms): one column, or two (time, a per-spike
                               count of the other repetitions that agree)
    test/...                   NOT READ: its .spiketimes are the organisers' aEIF model output
                               run on the test currents, not recordings of the cell

``NN`` is the stimulus, ``r`` the repetition (0, 1, ...). Only ``training/`` holds recorded
spikes, so the challenge holds out a later part of each recording, as the 2009 competition
did (train on the first part, predict the rest from the current alone):

- every recorded stimulus has a training window ``0 .. train_until`` (default 22 s) with its
  voltage and the competition's spike times; its current is public over the whole trace;
- the test window ``train_until .. end of recording`` (default 22-34 s) of every stimulus
  whose intrinsic reliability R there (mean pairwise Gamma of its repetitions, Delta = 2 ms)
  is at least ``r_floor`` (default 0.3) is scored; its spike times go to ``hidden.npz`` only
  and its voltage is not kept. A stimulus below the floor is training-only, and the
  manifest's provenance says why (``provenance["stimuli"][NN]["test_excluded"]``);
- Delta = 2 ms (the 2007 setting); each test stimulus is scored against its own
  repetitions and normalised by its own R, and the challenge score averages the test
  stimuli with equal weight (see :mod:`qsnmc.scoring.evaluation`);
- the current of a stimulus is the mean of its repetitions' recorded currents (they
  differ by a few pA of measurement noise); the largest deviation is in the provenance.

The manifest carries :data:`IMPORTER_VERSION`; :func:`qsnmc.challenges.store.load_challenge`
refuses a challenge made by an older importer, whose test spikes came from ``test/``
(:mod:`qsnmc.challenges.qsnmc2007_version`).
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from qsnmc.challenges.qsnmc2007_version import DEFAULT_NAME, IMPORTER, IMPORTER_VERSION
from qsnmc.challenges.split import Recording, Split, split_recordings
from qsnmc.challenges.store import Challenge, ChallengeError, files_digest, sha256_file, write_challenge
from qsnmc.challenges.textdata import DataImportError, check_voltage_mV, current_in_pA, read_table, voltage_storage
from qsnmc.scoring.metrics import n_coincidences
from qsnmc.scoring.spikes import spike_times_from_voltage

#: sampling step of the 2007 files (s): the first column counts milliseconds
DT_S = 0.001
#: the 2007 coincidence window (s)
DELTA_S = 0.002
#: default end of the training window = start of the test window (s)
TRAIN_UNTIL_S = 22.0
#: default floor on a stimulus' R in the test window for it to be tested
R_FLOOR = 0.3
FILE_PATTERN = re.compile(r"^(?P<stim>\d+)-(?P<rep>\d+)\.(?P<kind>voltage|spiketimes)(?:\.gz)?$")
REFERENCE = "QSNMC 2007 Challenge A (Jolivet et al. 2008, Biol Cybern 99:417)"
#: why test/ is not read (one line, printed after import and kept in the provenance)
TEST_FOLDER_NOT_READ = (
    "test/ not read: its spike times were made by the organisers' aEIF model, not recorded from the cell"
)


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


def _check_repetitions(scanned: dict[str, dict[str, dict[int, Path]]], folder: Path) -> int:
    """The number of repetitions every stimulus has; raise naming the first missing file."""
    last = {stim: max([*files["voltage"], *files["spiketimes"]]) for stim, files in scanned.items()}
    n_reps = Counter(last.values()).most_common(1)[0][0] + 1
    if n_reps < 2:
        raise DataImportError(f"{folder}: 1 repetition per stimulus; R needs at least 2")
    for stim, files in sorted(scanned.items()):
        for rep in range(max(n_reps, last[stim] + 1)):
            for kind in ("voltage", "spiketimes"):
                if rep not in files[kind]:
                    raise DataImportError(
                        f"{folder / f'{stim}-{rep}.{kind}'}: missing (plain or .gz): every stimulus needs "
                        f"repetitions 0..{n_reps - 1}, each with a .voltage and a .spiketimes file"
                    )
        if last[stim] + 1 != n_reps:
            raise DataImportError(
                f"{folder}: stimulus {stim} has {last[stim] + 1} repetitions, the others {n_reps}: "
                "every stimulus needs the same repetitions"
            )
    return n_reps


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


def _read_recordings(folder: Path, unit: str | None) -> tuple[list[Recording], int, dict[str, str]]:
    """Every stimulus of ``training/``, checked, the number of samples per trace, and the
    sha256 of every file read (by path relative to the folder's parent: ``training/NN-r...``)."""
    scanned = _scan(folder)
    if not scanned:
        raise DataImportError(f"{folder}: no NN-r.voltage / NN-r.spiketimes files")
    n_reps = _check_repetitions(scanned, folder)
    recordings, n_rows, digests = [], None, {}
    for stim, files in sorted(scanned.items()):
        currents, voltages = [], []
        for r in range(n_reps):
            current, voltage = _read_trace(files["voltage"][r], n_rows)
            n_rows = current.size
            currents.append(current)
            voltages.append(voltage)
        trains = [_read_spikes(files["spiketimes"][r], n_rows * DT_S) for r in range(n_reps)]
        mean_current, current_info = _stimulus_current(stim, currents, unit, folder)
        voltage = np.stack(voltages)
        check_voltage_mV(voltage, f"{folder}/{stim}-*.voltage (column 3)")
        info = {
            "repetitions": n_reps,
            "current": current_info,
            "spike_counts": [int(t.size) for t in trains],
            "spike_times_vs_detector": _detector_agreement(voltage, trains),
        }
        for p in (p for kind in files.values() for p in kind.values()):
            digests[f"{folder.name}/{p.name}"] = sha256_file(p)
        info["files_sha256"] = {p.name: digests[f"{folder.name}/{p.name}"][:16]
                                for kind in files.values() for p in kind.values()}
        recordings.append(Recording(stim, DT_S, mean_current, voltage, trains, info))
    return recordings, n_rows, digests


def _source_root(src_dir: Path) -> Path:
    if (src_dir / "training").is_dir():
        return src_dir
    if (src_dir / "challengeA" / "training").is_dir():
        return src_dir / "challengeA"
    raise DataImportError(f"{src_dir}: expected a QSNMC 2007 Challenge A folder with a training/ subfolder")


def check_source(src_dir: str | Path) -> Path:
    """A quick look at a Challenge A folder before anything else is checked: its ``training/`` and
    that it holds ``NN-r.voltage`` / ``NN-r.spiketimes`` files; returns the folder holding ``training/``.

    Raises:
        DataImportError: not such a folder.
    """
    root = _source_root(Path(src_dir).resolve())
    if not _scan(root / "training"):
        raise DataImportError(f"{root / 'training'}: no NN-r.voltage / NN-r.spiketimes files")
    return root


def _check_options(train_until_s: float, r_floor: float, duration_s: float, folder: Path) -> None:
    if not math.isfinite(train_until_s) or abs(round(train_until_s / DT_S) * DT_S - train_until_s) > 1e-9:
        raise DataImportError(f"--train-until {train_until_s:g} s: not on the {DT_S * 1e3:g} ms sample grid")
    if not 0 < train_until_s < duration_s:
        raise DataImportError(
            f"--train-until {train_until_s:g} s: the test window {train_until_s:g}-{duration_s:g} s is outside "
            f"the recordings ({folder}: {duration_s:g} s): choose 0 < --train-until < {duration_s:g}"
        )
    if not math.isfinite(r_floor):
        raise DataImportError(f"--r-floor {r_floor!r}: expected a finite number")


def import_qsnmc2007(
    src_dir: str | Path,
    dest_dir: str | Path,
    *,
    name: str = DEFAULT_NAME,
    current_unit: str | None = None,
    train_until_s: float = TRAIN_UNTIL_S,
    r_floor: float = R_FLOOR,
) -> Path:
    """Import the recordings of a QSNMC 2007 Challenge A folder into a harness challenge at ``dest_dir``.

    Only ``training/`` is read (``test/`` holds model-made spike times). Everything is
    parsed and checked before anything is written; the challenge folder is then written
    atomically (replacing ``dest_dir`` if it exists), so an error leaves nothing behind.

    Args:
        src_dir: the folder holding ``training/`` (or its parent, holding ``challengeA/``).
        dest_dir: the challenge folder to write.
        name: the challenge's name.
        current_unit: ``"pA"`` or ``"nA"`` to state the current's unit; None assumes pA and
            refuses an implausible amplitude.
        train_until_s: end of every stimulus' training window and start of its test window (s);
            the test window runs to the end of the recording.
        r_floor: a stimulus is tested only if its R in the test window (Delta = 2 ms) is at
            least this; the others are training-only.

    Returns:
        ``dest_dir`` as a Path.

    Raises:
        DataImportError: a missing, truncated, malformed, mismatched or implausible file,
            naming the file, the line and what was expected; or an option (``--train-until``,
            ``--r-floor``) that leaves no test window or no test stimulus.
    """
    root = _source_root(Path(src_dir).resolve())
    folder = root / "training"
    recordings, n_rows, digests = _read_recordings(folder, current_unit)
    duration = n_rows * DT_S
    train_until_s, r_floor = float(train_until_s), float(r_floor)
    _check_options(train_until_s, r_floor, duration, folder)
    span = f"{train_until_s:g}-{duration:g} s"

    stimuli, tested, reliability = split_recordings(recordings, Split(train_until_s, (), r_floor, DELTA_S))
    lsb, rounding = voltage_storage(np.concatenate([s.train_voltage_mV.ravel() for s in stimuli]))
    n_reps = len(recordings[0].trains)
    description = (
        f"{REFERENCE}, a real cortical neuron, recorded data only: fit on {train_until_s:g} s of "
        f"{len(stimuli)} stimuli, predict {span} of the {len(tested)} with R >= {r_floor:g} there "
        f"({', '.join(tested)}) from the current alone ({n_reps} repetitions, 1 kHz); "
        f"Delta = {DELTA_S * 1e3:g} ms; score = mean over test stimuli of Gamma/R (equal weight)"
    )
    provenance = _provenance(root, folder, digests, recordings, current_unit=current_unit, train_until_s=train_until_s,
                             duration_s=duration, r_floor=r_floor, reliability=reliability, lsb=lsb, rounding=rounding)
    challenge = Challenge(name=name, stimuli=stimuli, delta_s=DELTA_S, threshold_mV=0.0, description=description)
    return write_challenge(dest_dir, challenge, voltage_lsb_mV=lsb, provenance=provenance)


def _provenance(root: Path, folder: Path, digests: dict[str, str], recordings: list[Recording], *,
                current_unit: str | None, train_until_s: float, duration_s: float, r_floor: float,
                reliability: dict[str, float], lsb: float | None, rounding: float) -> dict[str, Any]:
    """The challenge's provenance: source files and digest, the split (s), units, spike times and storage."""
    train_window, test_window = (0.0, train_until_s), (train_until_s, duration_s)
    return {
        "source": REFERENCE,
        "source_dir": str(root),
        "source_sha256": files_digest(digests),
        "source_sha256_of": f"the {len(digests)} files read ({folder.name}/*), each file's sha256 listed in sorted "
        "path order (qsnmc.challenges.store.files_digest)",
        "importer": IMPORTER,
        "importer_version": IMPORTER_VERSION,
        "sampling": f"{1 / DT_S:g} Hz (first column: sample index in ms)",
        "split": {
            "train_until_s": train_until_s,
            "train_window_s": list(train_window),
            "test_window_s": list(test_window),
            "r_floor": r_floor,
            "design": "2009 competition's: train on the first part of each recording, predict the rest",
        },
        "test_window_reliability": reliability,
        "current": "mean of each stimulus' repetitions' recorded currents (per-stimulus deviations below); "
        "public over the whole recording",
        "current_unit": f"{current_unit} (given)" if current_unit else "pA (assumed; amplitude plausible)",
        "spike_times": "the competition's training/*.spiketimes files (ms, converted to s), split at train_until_s",
        "not_read": TEST_FOLDER_NOT_READ if (root / "test").exists() else None,
        "delta_s": DELTA_S,
        "scoring": "each test stimulus against its own repetitions, normalised by its own R; stimuli weighted equally",
        "voltage_storage": (
            f"int16 counts of {lsb} mV (largest rounding error {rounding:.2g} mV)" if lsb else "float32"
        ),
        "stimuli": {rec.name: rec.info for rec in recordings},
    }
