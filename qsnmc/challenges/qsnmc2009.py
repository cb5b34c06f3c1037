"""Import the QSNMC 2009 Challenge A or B files as a harness challenge on a substitute split.

Source layout (CRCNS ch-epfl-2009; Gerstner & Naud 2009, Science 326:379), each file
plain or ``.gz`` (``.csv`` copies accepted)::

    current.txt          injected current (pA), one sample per line, 10 kHz, the whole 60 s protocol
    voltage_allrep.txt   membrane voltage (mV), one column per repetition (13 for A, 9 for B),
                         10 kHz, the training part of the protocol only

The competition's test window (after 38 s) was never published, so the imported
challenge is scored on a **substitute split inside the recorded span** (default:
train 0-30 s, test 30-38 s). Its test spikes are the harness's detector output
(upward 0 mV crossings, :func:`qsnmc.scoring.spikes.spike_times_from_voltage`) on the recorded
voltage inside the substitute test window; they go to ``hidden.npz`` only, and the
training voltage stops at the end of the training window. The manifest's description
and provenance say that this split is a substitute, not the competition's test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from qsnmc.challenges.store import Challenge, ChallengeStimulus, sha256_file, write_challenge
from qsnmc.scoring.spikes import spike_times_from_voltage
from qsnmc.challenges.textdata import (
    DataImportError,
    check_voltage_mV,
    current_in_pA,
    find_data_file,
    read_table,
    voltage_storage,
)

#: sampling step of the 2009 files (s): 10 kHz
DT_S = 1e-4
#: the 2009 coincidence window (s)
DELTA_S = 0.004
#: repetitions per challenge in ``voltage_allrep.txt``
REPETITIONS = {"A": 13, "B": 9}
REFERENCE = "CRCNS ch-epfl-2009 (Gerstner & Naud 2009, Science 326:379; doi:10.6080/K0PN93H3)"


def _samples(t_s: float) -> int:
    return int(round(t_s * (1 / DT_S)))


def _check_windows(
    train_window_s: tuple[float, float], test_window_s: tuple[float, float], recorded_s: float, voltage_file: Path
) -> None:
    (a, b), (c, d) = train_window_s, test_window_s
    for label, t in (("training start", a), ("training stop", b), ("test start", c), ("test stop", d)):
        if abs(_samples(t) * DT_S - t) > 1e-9:
            raise DataImportError(f"{label} {t!r} s is not on the {DT_S * 1e3:g} ms sample grid")
    if not 0 <= a < b:
        raise DataImportError(f"training window {train_window_s} s: expected 0 <= start < stop")
    if not c < d:
        raise DataImportError(f"test window {test_window_s} s: expected start < stop")
    if c < b:
        raise DataImportError(
            f"test window {test_window_s} s overlaps the training window {train_window_s} s: the test must come after"
        )
    if d > recorded_s + 1e-9:
        raise DataImportError(
            f"{voltage_file}: voltage recorded for 0-{recorded_s:g} s only; the test window {test_window_s} s "
            "must lie inside it (the competition's test window was never published)"
        )


def import_qsnmc2009(
    src_dir: str | Path,
    dest_dir: str | Path,
    *,
    challenge: str = "A",
    train_window_s: tuple[float, float] = (0.0, 30.0),
    test_window_s: tuple[float, float] = (30.0, 38.0),
    current_unit: str | None = None,
    name: str | None = None,
) -> Path:
    """Import a QSNMC 2009 Challenge A/B folder into a harness challenge at ``dest_dir``.

    Everything is parsed and checked before anything is written; the challenge folder is
    then written atomically (replacing ``dest_dir`` if it exists), so an error leaves
    nothing behind.

    Args:
        src_dir: the folder holding ``current.txt`` and ``voltage_allrep.txt`` (plain or .gz).
        dest_dir: the challenge folder to write.
        challenge: ``"A"`` (13 repetitions) or ``"B"`` (9).
        train_window_s: the training window (s); the voltage is kept up to its stop only.
        test_window_s: the substitute test window (s), after the training window and inside
            the recorded voltage.
        current_unit: ``"pA"`` or ``"nA"`` to state the current's unit; None assumes pA and
            refuses an implausible amplitude.
        name: the challenge's name (default ``qsnmc2009a`` / ``qsnmc2009b``).

    Returns:
        ``dest_dir`` as a Path.

    Raises:
        DataImportError: a missing, truncated, malformed, mismatched or implausible file or
            window, naming the file, the line and what was expected.
    """
    letter = str(challenge).upper()
    if letter not in REPETITIONS:
        raise DataImportError(f"challenge {challenge!r}: only {' and '.join(REPETITIONS)} are supported")
    n_reps = REPETITIONS[letter]
    name = name or f"qsnmc2009{letter.lower()}"
    current_file, voltage_file, current, voltage = _read_recording(src_dir, n_reps, current_unit)
    recorded_s = voltage.shape[1] * DT_S
    train_window_s = (float(train_window_s[0]), float(train_window_s[1]))
    test_window_s = (float(test_window_s[0]), float(test_window_s[1]))
    _check_windows(train_window_s, test_window_s, recorded_s, voltage_file)
    stimulus, lsb, rounding = _stimulus(letter, n_reps, current, voltage, train_window_s, test_window_s)
    split = (
        f"train {train_window_s[0]:g}-{train_window_s[1]:g} s, SUBSTITUTE test {test_window_s[0]:g}-"
        f"{test_window_s[1]:g} s inside the published training recording"
    )
    description = (
        f"QSNMC 2009 Challenge {letter} ({n_reps} repetitions, 10 kHz) on a substitute split: {split}. "
        "This is not the competition's test (its test window, after 38 s, was never published); "
        f"Delta = {DELTA_S * 1e3:g} ms"
    )
    provenance = _provenance(letter, current_file, voltage_file, current_unit, current.size, recorded_s, split,
                             lsb, rounding)
    result = Challenge(name=name, stimuli=[stimulus], delta_s=DELTA_S, threshold_mV=0.0, description=description)
    return write_challenge(dest_dir, result, voltage_lsb_mV=lsb, provenance=provenance)


def _read_recording(src_dir: str | Path, n_reps: int, current_unit: str | None,
                    ) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """Find, read and check the current (pA) and voltage (mV, shape (n_reps, n_samples)) files of ``src_dir``."""
    src = Path(src_dir).resolve()
    if not src.is_dir():
        raise DataImportError(f"{src}: not a folder")
    current_file = find_data_file(src, ["current.txt", "current.csv"], what="current")
    voltage_file = find_data_file(src, ["voltage_allrep.txt", "voltage_allrep.csv"], what="voltage")

    current = current_in_pA(read_table(current_file, 1)[:, 0], current_unit, str(current_file))
    voltage = read_table(voltage_file, n_reps).T  # (n_reps, n_samples)
    check_voltage_mV(voltage, str(voltage_file))
    if voltage.shape[1] > current.size:
        raise DataImportError(
            f"{voltage_file}: {voltage.shape[1]} rows of voltage but {current_file.name} has only {current.size} "
            "samples: mismatched lengths (truncated current file?)"
        )
    return current_file, voltage_file, current, voltage


def _stimulus(letter: str, n_reps: int, current: np.ndarray, voltage: np.ndarray,
              train_window_s: tuple[float, float], test_window_s: tuple[float, float]) -> tuple[ChallengeStimulus, float | None, float]:
    """The challenge's one stimulus (spikes = upward 0 mV crossings), with its voltage storage (lsb mV, rounding mV)."""
    detected = spike_times_from_voltage(voltage, DT_S, 0.0)
    train_spikes = [t[(t >= train_window_s[0]) & (t < train_window_s[1])] for t in detected]
    test_spikes = [t[(t >= test_window_s[0]) & (t < test_window_s[1])] for t in detected]
    train_voltage = voltage[:, _samples(train_window_s[0]) : _samples(train_window_s[1])]
    lsb, rounding = voltage_storage(train_voltage)
    stimulus = ChallengeStimulus(
        name=letter,
        dt_s=DT_S,
        current_pA=current,
        n_repetitions=n_reps,
        train_window_s=train_window_s,
        train_voltage_mV=train_voltage,
        train_spikes_s=train_spikes,
        test_window_s=test_window_s,
        test_spikes_s=test_spikes,
    )
    return stimulus, lsb, rounding


def _provenance(letter: str, current_file: Path, voltage_file: Path, current_unit: str | None, n_current: int,
                recorded_s: float, split: str, lsb: float | None, rounding: float) -> dict[str, object]:
    """The challenge's provenance: source files, assumptions, the substitute split and the voltage storage."""
    return {
        "source": REFERENCE,
        "source_files": {p.name: sha256_file(p) for p in (current_file, voltage_file)},
        "importer": "qsnmc.challenges.qsnmc2009",
        "challenge": letter,
        "sampling": f"{1 / DT_S:g} Hz (assumed: the files hold no time column)",
        "current_unit": f"{current_unit} (given)" if current_unit else "pA (assumed; amplitude plausible)",
        "current_duration_s": n_current * DT_S,
        "voltage_recorded_s": recorded_s,
        "split": "substitute",
        "split_note": (
            f"{split}. The competition's own test window (the last 22 s of the 60 s protocol) was never "
            "published; scores on this challenge are not comparable with the competition's table."
        ),
        "test_spike_times": "upward 0 mV crossings of the recorded voltage (qsnmc.scoring.spikes.spike_times_from_voltage)",
        "delta_s": DELTA_S,
        "voltage_storage": f"int16 counts of {lsb} mV (largest rounding error {rounding:.2g} mV)" if lsb else "float32",
    }
