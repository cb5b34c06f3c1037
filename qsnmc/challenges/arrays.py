"""Challenges from a plain ``.npz`` of arrays: the documented format for recordings that are not NWB.

One ``.npz`` file (``numpy.savez``) holds::

    dt_s              scalar             sampling step (s)
    current_unit      string scalar      "pA", "nA" or "A"
    voltage_unit      string scalar      "mV" or "V"
    current/NAME      (n_samples,)       the current injected in stimulus NAME
    voltage/NAME      (n_reps, n_samples) the voltage recorded in each repetition of NAME

``NAME`` is a stimulus name (letters, digits, ``-``, ``_``); every ``current/NAME`` needs its
``voltage/NAME`` of as many samples. Spikes are the harness's (upward crossings of a
threshold, 0 mV by default) and the split is chosen as in :mod:`qsnmc.challenges.split`.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qsnmc.challenges.recorded import detect_trains, source_of, spike_rule, write_recorded
from qsnmc.challenges.split import Recording, Split
from qsnmc.challenges.textdata import DataImportError, check_voltage_mV

IMPORTER = "qsnmc.challenges.arrays"
#: unit -> factor to pA / mV
CURRENT_UNITS = {"pA": 1.0, "nA": 1e3, "A": 1e12}
VOLTAGE_UNITS = {"mV": 1.0, "V": 1e3}
KEY = re.compile(r"^(current|voltage)/(?P<name>[A-Za-z0-9_-]+)$")


def _unit(arrays: Any, key: str, units: dict[str, float], path: Path) -> tuple[str, float]:
    if key not in arrays:
        raise DataImportError(f"{path}: missing {key} (one of {', '.join(units)})")
    value = arrays[key]
    unit = str(value.item()) if value.ndim == 0 and value.dtype.kind in "US" else None
    if unit not in units:
        raise DataImportError(f"{path}: {key} {unit or value.tolist()!r}: expected one of {', '.join(units)}")
    return unit, units[unit]


#: a sampling step (s) outside this range is refused: 100 kHz to 100 Hz
PLAUSIBLE_DT_S = (1e-5, 1e-2)


def _plausible_dt(dt_s: float, path: Path) -> float:
    """``dt_s`` if it is a plausible sampling step of a current-clamp recording (s), else a refusal."""
    low, high = PLAUSIBLE_DT_S
    if not low <= dt_s <= high:
        hint = " (ms typed as s? 0.1 ms is dt_s = 0.0001)" if dt_s > high else " (us typed as s?)"
        raise DataImportError(f"{path}: dt_s {dt_s:g} s: a sampling rate of {1 / dt_s:g} Hz is implausible for "
                              f"current clamp; expected {low:g}-{high:g} s{hint}")
    return dt_s


def _plausible_current(recordings: Sequence[Recording], unit: str, path: Path) -> None:
    """Refuse a current whose largest amplitude over every stimulus is implausible in pA after its
    stated unit (e.g. nA labelled pA): the range of :data:`qsnmc.challenges.textdata.PLAUSIBLE_MAX_PA`."""
    from qsnmc.challenges.textdata import PLAUSIBLE_MAX_PA

    peak = max(float(np.max(np.abs(r.current_pA))) if r.current_pA.size else 0.0 for r in recordings)
    low, high = PLAUSIBLE_MAX_PA
    if not low <= peak <= high:
        hint = "nA or A labelled pA?" if peak < low else "pA labelled nA or A?"
        raise DataImportError(f"{path}: current amplitude max |I| = {peak:.3g} pA after current_unit {unit!r} is "
                              f"implausible (expected {low:g}-{high:g} pA): {hint}")


def _training_spikes(recordings: Sequence[Recording], split: Split) -> None:
    """Refuse a split whose training windows hold no recorded spike: nothing to fit a spiking model on
    (a threshold above the spikes, a voltage in the wrong unit, or times in the wrong unit)."""
    trained = [r for r in recordings if r.name not in split.test_stimuli]
    until = split.train_until_s
    if trained and not any(np.any(t < until) if until is not None else t.size for r in trained for t in r.trains):
        span = f"0-{until:g} s" if until is not None else "the training stimuli"
        raise DataImportError(f"no spike in any training window ({span} of {', '.join(r.name for r in trained)}): "
                              "check --threshold-mv, the voltage unit, dt_s (s, not ms) and --train-until (s)")


def _numbers(arrays: Any, key: str, ndim: int, path: Path) -> np.ndarray:
    value = arrays[key]
    if value.dtype.kind not in "iuf":
        raise DataImportError(f"{path}: {key}: data of type {value.dtype}, expected numbers")
    if value.ndim != ndim:
        expected = "(n_samples,)" if ndim == 1 else "(n_repetitions, n_samples)"
        raise DataImportError(f"{path}: {key}: shape {value.shape}, expected {expected}")
    if not np.all(np.isfinite(value)):
        raise DataImportError(f"{path}: {key}: missing (NaN) or infinite values")
    return np.asarray(value, np.float64)


def check_arrays_file(path: str | Path) -> None:
    """A quick look before anything else is checked: ``path`` is a file and a zip archive (an ``.npz``).

    Raises:
        DataImportError: a missing file, numpy.save's single array, or not an ``.npz``.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise DataImportError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":  # numpy.save's single array
        raise DataImportError(f"{path}: a single array, expected an .npz of named arrays (see the README)")
    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle
        raise DataImportError(f"{path}: not a .npz file (expected a zip archive of named arrays written by "
                              "numpy.savez; see the README)")


def read_arrays(path: str | Path, threshold_mV: float = 0.0) -> tuple[list[Recording], dict[str, Any]]:
    """The recorded stimuli of a plain ``.npz`` (see the module docstring) and its units.

    Raises:
        DataImportError: not an ``.npz``, a missing key or unit, wrong types or shapes,
            mismatched lengths; naming the file and the key.
    """
    path = Path(path).resolve()
    check_arrays_file(path)
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataImportError(f"{path}: not a readable .npz file: {exc}") from exc
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise DataImportError(f"{path}: a single array, expected an .npz of named arrays (see the README)")
    with arrays:
        try:
            keys = list(arrays.files)
            if "dt_s" not in keys:
                raise DataImportError(f"{path}: missing dt_s (the sampling step in s)")
            dt = arrays["dt_s"]
            if dt.shape != () or dt.dtype.kind not in "iuf" or not float(dt) > 0:
                raise DataImportError(f"{path}: dt_s {dt!r}: expected one positive number (s)")
            dt_s = _plausible_dt(float(dt), path)
            current_unit, to_pA = _unit(arrays, "current_unit", CURRENT_UNITS, path)
            voltage_unit, to_mV = _unit(arrays, "voltage_unit", VOLTAGE_UNITS, path)
            odd = [k for k in keys if k not in ("dt_s", "current_unit", "voltage_unit") and not KEY.match(k)]
            if odd:
                raise DataImportError(f"{path}: unexpected key {odd[0]!r} (expected current/NAME and voltage/NAME, "
                                      "NAME of letters, digits, '-' and '_')")
            names = sorted({KEY.match(k)["name"] for k in keys if KEY.match(k)})
            if not names:
                raise DataImportError(f"{path}: no current/NAME and voltage/NAME arrays")
            recordings = []
            for name in names:
                for kind in ("current", "voltage"):
                    if f"{kind}/{name}" not in keys:
                        raise DataImportError(f"{path}: stimulus {name}: missing {kind}/{name}")
                current = _numbers(arrays, f"current/{name}", 1, path) * to_pA
                voltage = _numbers(arrays, f"voltage/{name}", 2, path) * to_mV
                if voltage.shape[1] != current.size:
                    raise DataImportError(f"{path}: stimulus {name}: mismatched lengths: current/{name} has "
                                          f"{current.size} samples, voltage/{name} {voltage.shape[1]}")
                check_voltage_mV(voltage, f"{path}: voltage/{name} ({voltage_unit})")
                trains = detect_trains(voltage, dt_s, threshold_mV, f"{path}: stimulus {name}")
                info = {"repetitions": int(voltage.shape[0]), "spike_counts": [int(t.size) for t in trains],
                        "spike_times": spike_rule(threshold_mV)}
                recordings.append(Recording(name, dt_s, current, voltage, trains, info))
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            if isinstance(exc, DataImportError):
                raise
            raise DataImportError(f"{path}: damaged .npz: {exc}") from exc
    _plausible_current(recordings, current_unit, path)
    return recordings, {"current_unit": current_unit, "voltage_unit": voltage_unit, "dt_s": dt_s}


def import_arrays(
    src: str | Path,
    dest_dir: str | Path,
    *,
    name: str,
    train_until_s: float | None = None,
    test_stimuli: Sequence[str] = (),
    r_floor: float = 0.3,
    delta_ms: float = 4.0,
    threshold_mV: float = 0.0,
) -> Path:
    """Import a plain ``.npz`` of recordings as a challenge at ``dest_dir`` (written whole or not at all).

    Args:
        src: the ``.npz`` file.
        dest_dir: the challenge folder to write (replaced if it exists).
        name: the challenge's name.
        train_until_s, test_stimuli, r_floor: the split (see :mod:`qsnmc.challenges.split`).
        delta_ms: coincidence window (ms).
        threshold_mV: spike threshold (mV).

    Raises:
        DataImportError: a malformed file or a split that leaves no training or no test data.
    """
    path = Path(src).resolve()
    recordings, units = read_arrays(path, float(threshold_mV))
    split = Split(None if train_until_s is None else float(train_until_s), tuple(test_stimuli), float(r_floor),
                  float(delta_ms) / 1e3)
    _training_spikes(recordings, split)
    provenance = {**source_of(path), "source": f"arrays file {path.name}", "importer": IMPORTER, "units": units}
    return write_recorded(dest_dir, name=name, recordings=recordings, split=split, threshold_mV=float(threshold_mV),
                          provenance=provenance, description=f"recordings of {path.name} (plain arrays)")
