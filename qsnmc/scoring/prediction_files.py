"""Predicted spike times from files made anywhere: text, CSV or ``.npz``, checked as a plugin's output is.

Each file gives spike times for one or more test stimuli, one train for every repetition or one
train per repetition:

- text (any suffix but ``.csv``/``.npz``; ``.txt`` in a folder): one time per line; lines
  starting with ``#`` are comments, except headers ``# unit: s|ms``, ``# stimulus: NAME`` and
  ``# repetition: R``. Without a stimulus header the file's name says it: ``<stimulus>.txt``
  (one train for every repetition) or ``<stimulus>-<r>.txt`` (repetition r, from 0).
- CSV (``.csv``): a header row with a ``stimulus`` column, an optional ``repetition`` column
  and one time column: ``time_s``, ``time_ms`` or ``time`` (unit from the option).
- ``.npz``: arrays named ``<stimulus>`` or ``<stimulus>/<r>``, and a ``unit`` entry (``"s"`` or ``"ms"``).

The unit must be said, by the option or in the file; the two must agree. A stimulus must be
given whole or for all its repetitions, once. Every train then passes
:func:`qsnmc.scoring.evaluation.validate_prediction`, the check of a plugin's predictions.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from qsnmc.scoring.evaluation import validate_prediction
from qsnmc.scoring.metrics import InvalidPrediction

#: seconds per unit
UNITS = {"s": 1.0, "ms": 1e-3}
#: the suffixes a folder is searched for
SUFFIXES = (".txt", ".csv", ".npz")
_HEADER = re.compile(r"^#\s*(unit|stimulus|repetition)\s*[:=]\s*(\S+)\s*$", re.IGNORECASE)
_TIME_COLUMNS = {"time_s": "s", "time_ms": "ms", "time": None}


class PredictionFileError(ValueError):
    """A prediction file that cannot be scored; the message is one line naming the file."""


@dataclass(frozen=True)
class TestWindow:
    """What a test stimulus' prediction must fit: its window (s) and number of repetitions."""

    window_s: tuple[float, float]
    n_repetitions: int


@dataclass
class _Part:
    """Spike times a file gives for one stimulus (and one repetition, or None for every one)."""

    stimulus: str
    repetition: int | None
    times: np.ndarray
    unit: str | None
    where: str


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, a folder standing for its ``.txt``, ``.csv`` and ``.npz`` files (sorted).

    Raises:
        PredictionFileError: a path that does not exist, or a folder without such files.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES
                           and not f.name.startswith("."))
            if not found:
                raise PredictionFileError(f"{p}: a folder without .txt, .csv or .npz files")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise PredictionFileError(f"{p}: no such file or folder")
    return files


def sha256_of(path: Path) -> str:
    """The file's sha256 (hex), recorded with the row it was scored into."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise PredictionFileError(f"{where}: {text.strip()[:40]!r} is not a number") from None


def _repetition(text: str, where: str) -> int:
    if not re.fullmatch(r"\d+", text.strip()):
        raise PredictionFileError(f"{where}: repetition {text.strip()[:20]!r} is not a number from 0")
    return int(text)


def _name_of(stem: str, known: Mapping[str, TestWindow]) -> tuple[str, int | None]:
    """``A`` -> (A, None); ``A-3`` -> (A, 3) when A is a stimulus and ``A-3`` is not; else (stem, None)."""
    if stem in known:
        return stem, None
    head, _, rep = stem.rpartition("-")
    if head in known and rep.isdigit():
        return head, int(rep)
    return stem, None


def _read_text(path: Path, known: Mapping[str, TestWindow]) -> list[_Part]:
    headers: dict[str, str] = {}
    values = []
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _HEADER.match(line)
            if match:
                headers[match.group(1).lower()] = match.group(2)
            continue
        values.append(_number(line, f"{path}: line {i}"))
    stimulus, repetition = _name_of(path.stem, known)
    if "stimulus" in headers:
        stimulus, repetition = headers["stimulus"], None
    if "repetition" in headers:
        repetition = _repetition(headers["repetition"], f"{path}: header")
    return [_Part(stimulus, repetition, np.array(values, np.float64), headers.get("unit"), str(path))]


def _read_csv(path: Path) -> list[_Part]:
    rows = list(csv.reader(io.StringIO(path.read_text(errors="replace"))))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    header = [c.strip().lower() for c in rows[0]] if rows else []
    times = [c for c in header if c in _TIME_COLUMNS]
    if "stimulus" not in header or len(times) != 1:
        raise PredictionFileError(f"{path}: expected a header row with a 'stimulus' column and one time column "
                                  f"(time_s, time_ms or time), got {','.join(header)[:80]!r}")
    col_s, col_t = header.index("stimulus"), header.index(times[0])
    col_r = header.index("repetition") if "repetition" in header else None
    groups: dict[tuple[str, int | None], list[float]] = {}
    for i, row in enumerate(rows[1:], start=2):
        where = f"{path}: row {i}"
        if len(row) != len(header):
            raise PredictionFileError(f"{where}: {len(row)} fields for {len(header)} columns")
        rep = None if col_r is None or not row[col_r].strip() else _repetition(row[col_r], where)
        groups.setdefault((row[col_s].strip(), rep), []).append(_number(row[col_t], where))
    return [_Part(s, r, np.array(t, np.float64), _TIME_COLUMNS[times[0]], str(path)) for (s, r), t in groups.items()]


def _read_npz(path: Path) -> list[_Part]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError) as exc:
        raise PredictionFileError(f"{path}: not a readable .npz without pickles: {exc}") from None
    unit = arrays.pop("unit", None)
    unit = None if unit is None else str(unit.item() if unit.ndim == 0 else unit)
    parts = []
    for key, a in arrays.items():
        stim, sep, rep = key.rpartition("/")
        name, repetition = (stim, _repetition(rep, f"{path}: array {key!r}")) if sep else (key, None)
        if a.dtype.kind not in "fiu" or a.ndim > 1:
            raise PredictionFileError(f"{path}: array {key!r} is not a 1-D array of numbers")
        parts.append(_Part(name, repetition, a.astype(np.float64), unit, f"{path}: array {key!r}"))
    return parts


def _unit(part: _Part, option: str | None) -> float:
    """Seconds per unit of a part: said by the option, the file, or both alike."""
    said = {u.lower() for u in (part.unit, option) if u is not None}
    bad = said - set(UNITS)
    if bad:
        raise PredictionFileError(f"{part.where}: unit {bad.pop()!r}; expected s or ms")
    if len(said) > 1:
        raise PredictionFileError(f"{part.where}: the file says unit {part.unit}, --unit says {option}: which one?")
    if not said:
        raise PredictionFileError(f"{part.where}: ambiguous unit: say s or ms with --unit, a '# unit: s' header, a "
                                  "time_s/time_ms CSV column or an npz 'unit' entry")
    return UNITS[said.pop()]


def read_parts(files: Sequence[Path], known: Mapping[str, TestWindow]) -> list[_Part]:
    """Every part of every file, in the files' order."""
    parts: list[_Part] = []
    for f in files:
        suffix = f.suffix.lower()
        parts += _read_npz(f) if suffix == ".npz" else _read_csv(f) if suffix == ".csv" else _read_text(f, known)
    return parts


def _assemble(parts: Sequence[_Part], known: Mapping[str, TestWindow]) -> dict[str, list[_Part | None]]:
    """Per stimulus, its one whole part or one part per repetition; refuses unknown, twice given and missing."""
    out: dict[str, list[_Part | None]] = {}
    whole: dict[str, _Part] = {}
    for p in parts:
        if p.stimulus not in known:
            raise PredictionFileError(f"{p.where}: no test stimulus {p.stimulus!r}; test stimuli: "
                                      f"{', '.join(known)}")
        n = known[p.stimulus].n_repetitions
        slots = out.setdefault(p.stimulus, [None] * n)
        if p.repetition is None:
            if p.stimulus in whole or any(slots):
                raise PredictionFileError(f"{p.where}: stimulus {p.stimulus!r} given twice")
            whole[p.stimulus] = p
            continue
        if p.repetition >= n:
            raise PredictionFileError(f"{p.where}: repetition {p.repetition} of stimulus {p.stimulus!r}, which has "
                                      f"{n} (0-{n - 1})")
        if p.stimulus in whole or slots[p.repetition] is not None:
            raise PredictionFileError(f"{p.where}: stimulus {p.stimulus!r} repetition {p.repetition} given twice")
        slots[p.repetition] = p
    for name, p in whole.items():
        out[name] = [p]
    missing = [name for name in known if name not in out]
    if missing:
        raise PredictionFileError(f"no prediction for test stimulus {', '.join(map(repr, missing))} (every test "
                                  f"stimulus needs one: {', '.join(known)})")
    for name, slots in out.items():
        gaps = [str(r) for r, p in enumerate(slots) if p is None]
        if gaps:
            raise PredictionFileError(f"stimulus {name!r}: no prediction for repetition {', '.join(gaps)} (give "
                                      "every repetition, or one train for all)")
    return out


def read_predictions(paths: Iterable[str | Path], known: Mapping[str, TestWindow],
                     unit: str | None = None) -> tuple[dict[str, list[np.ndarray]], list[Path]]:
    """Predicted trains (s) per test stimulus from files, checked as a plugin's predictions are.

    Args:
        paths: files, or folders standing for their ``.txt``, ``.csv`` and ``.npz`` files.
        known: the test stimuli by name.
        unit: ``"s"`` or ``"ms"`` for every file (None: each file says its own).

    Returns:
        ``{stimulus: one train per repetition}`` and the files read.

    Raises:
        PredictionFileError: one line naming the file and what is wrong.
    """
    files = expand(paths)
    assembled = _assemble(read_parts(files, known), known)
    trains: dict[str, list[np.ndarray]] = {}
    for name, parts in assembled.items():
        window, n = known[name].window_s, known[name].n_repetitions
        trains[name] = []
        for p in parts:
            scale = _unit(p, unit)
            try:
                checked = validate_prediction(p.times * scale, window, n if len(parts) == 1 else 1)
            except InvalidPrediction as exc:
                read_as = "ms" if scale == UNITS["ms"] else "s"
                raise PredictionFileError(f"{p.where}: {str(exc).removeprefix('predicted train 0: ')} (read in "
                                          f"{read_as})") from None
            trains[name] += checked if len(parts) == 1 else checked[:1]
    return trains, files
