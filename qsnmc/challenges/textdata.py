"""Robust reading of the competitions' numeric text files (plain or gzip-compressed).

The QSNMC files are whitespace-separated columns of numbers, one sample or one
spike per line (``.csv`` copies use commas). Every problem is reported as a
:class:`DataImportError` naming the file, the line (1-based) and what was
expected, e.g. ``01-0.voltage.gz: line 1203: expected 3 numeric columns, got 'abc'``.
"""
from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"


class DataImportError(ValueError):
    """A source file that cannot be imported: missing, truncated, malformed or implausible."""


def find_data_file(folder: str | Path, names: Sequence[str], *, what: str) -> Path:
    """The first existing file among ``names`` (each tried plain, then with ``.gz``) in ``folder``.

    Args:
        folder: the folder to look in.
        names: candidate file names, in order of preference (e.g. ``["current.txt", "current.csv"]``).
        what: what the file holds, for the error message.

    Raises:
        DataImportError: none of the candidates exists.
    """
    folder = Path(folder)
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    tried = ", ".join(f"{n}[.gz]" for n in names)
    raise DataImportError(f"{folder}: no {what} file found (looked for {tried})")


def read_text(path: str | Path) -> str:
    """The whole text of a plain or gzip-compressed file (gzip recognised by its magic bytes).

    Raises:
        DataImportError: unreadable, truncated or corrupt gzip, or not ASCII/UTF-8 text.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataImportError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataImportError(f"{path}: truncated or corrupt gzip file ({exc})") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataImportError(f"{path}: line {line}: expected text, got binary data (byte {exc.start})") from exc


def _expected(n_columns: int | Sequence[int] | None) -> str:
    if n_columns is None:
        return "numeric columns"
    if isinstance(n_columns, int):
        return f"{n_columns} numeric column{'s' if n_columns != 1 else ''}"
    return " or ".join(str(n) for n in n_columns) + " numeric columns"


def _allowed(n_columns: int | Sequence[int] | None, first: int) -> set[int]:
    if n_columns is None:
        return {first}
    return {n_columns} if isinstance(n_columns, int) else set(n_columns)


def _first_problem(text: str, n_columns: int | Sequence[int] | None) -> tuple[int, str] | None:
    """Line number and description of the first malformed line, or None if every line is fine."""
    allowed: set[int] | None = None
    expect = _expected(n_columns)
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        tokens = [t.strip() for t in content.split(",")] if "," in content else content.split()
        if allowed is None:
            allowed = _allowed(n_columns, len(tokens))
            if n_columns is None:
                expect = _expected(len(tokens))
        for column, token in enumerate(tokens, start=1):
            if token == "":
                return number, f"expected {expect}, column {column} is empty (missing value)"
            try:
                value = float(token)
            except ValueError:
                return number, f"expected {expect}, got {token!r} (column {column})"
            if not np.isfinite(value):
                return number, f"expected {expect}, got a missing value {token!r} (column {column})"
        if len(tokens) not in allowed:
            shown = content if len(content) <= 60 else content[:57] + "..."
            what = "the first line's " if n_columns is None else ""
            return number, f"expected {what}{expect}, got {len(tokens)} ({shown!r})"
    return None


def read_table(
    path: str | Path,
    n_columns: int | Sequence[int] | None = None,
    *,
    n_rows: int | None = None,
    allow_empty: bool = False,
) -> np.ndarray:
    """Read a file of numeric columns into a float64 array of shape ``(n_rows, n_columns)``.

    Blank lines and ``#`` comments are skipped; columns are separated by whitespace or
    commas. Every value must be a finite number.

    Args:
        path: the file (plain or ``.gz``).
        n_columns: the number of columns expected (an int, several allowed counts, or
            None for "the same count on every line as on the first").
        n_rows: the number of data rows expected, or None for any.
        allow_empty: accept a file without any data line (e.g. a train without spikes);
            its array has shape ``(0, n)`` (``n`` = the first allowed count, or 0).

    Raises:
        DataImportError: naming the file, the line and what was expected.
    """
    path = Path(path)
    text = read_text(path)
    delimiter = "," if "," in text[:4096] else None
    try:
        table = np.loadtxt(io.StringIO(text), dtype=np.float64, delimiter=delimiter, comments="#", ndmin=2)
    except ValueError as exc:
        problem = _first_problem(text, n_columns)
        if problem is None:
            raise DataImportError(f"{path}: not a table of {_expected(n_columns)}: {exc}") from exc
        raise DataImportError(f"{path}: line {problem[0]}: {problem[1]}") from exc
    if table.size == 0:
        if not allow_empty:
            raise DataImportError(f"{path}: empty file, expected {_expected(n_columns)}")
        width = n_columns if isinstance(n_columns, int) else (min(n_columns) if n_columns else 0)
        return np.zeros((0, width))
    if (n_columns is not None and table.shape[1] not in _allowed(n_columns, 0)) or not np.all(np.isfinite(table)):
        problem = _first_problem(text, n_columns)
        if problem is None:  # pragma: no cover - loadtxt and the line scan disagree
            raise DataImportError(f"{path}: expected {_expected(n_columns)}, got {table.shape[1]}")
        raise DataImportError(f"{path}: line {problem[0]}: {problem[1]}")
    if n_rows is not None and table.shape[0] != n_rows:
        hint = " (file truncated?)" if table.shape[0] < n_rows else ""
        raise DataImportError(f"{path}: expected {n_rows} rows, got {table.shape[0]}{hint}")
    return table


# -- plausibility of units ---------------------------------------------------------------
#: accepted current units and their factor to pA
CURRENT_UNITS = {"pA": 1.0, "nA": 1000.0}
#: a current in pA whose largest magnitude is outside this range is refused as implausible: a
#: protocol peaking below 10 pA is under the amplifier noise (the file is in nA), one above 100 nA is absurd
PLAUSIBLE_MAX_PA = (10.0, 1e5)
#: a voltage in mV whose largest magnitude is outside this range is refused as implausible
PLAUSIBLE_MAX_MV = (1.0, 1000.0)


def current_in_pA(values: np.ndarray, unit: str | None, source: str) -> np.ndarray:
    """Convert a current to pA, refusing an amplitude implausible for pA when no unit is given.

    Args:
        values: the current as read from the file.
        unit: ``"pA"`` or ``"nA"`` as stated by the user (trusted, no plausibility check), or
            None to assume pA and check that ``max |I|`` lies within :data:`PLAUSIBLE_MAX_PA`.
        source: the file (or files) the current came from, for the message.

    Raises:
        DataImportError: an unknown unit, or an implausible amplitude (with the fix to use).
    """
    if unit is not None:
        if unit not in CURRENT_UNITS:
            raise DataImportError(f"unknown current unit {unit!r}: use one of {', '.join(CURRENT_UNITS)}")
        return np.asarray(values, np.float64) * CURRENT_UNITS[unit]
    peak = float(np.max(np.abs(values))) if np.size(values) else 0.0
    low, high = PLAUSIBLE_MAX_PA
    if peak < low:
        raise DataImportError(
            f"{source}: current amplitude max |I| = {peak:.3g} is implausible for pA (below {low:g}): "
            'the file looks like nA; import with current_unit="nA" (--current-unit nA)'
        )
    if peak > high:
        raise DataImportError(
            f"{source}: current amplitude max |I| = {peak:.3g} is implausible for pA (above {high:g}); "
            'if the unit is right, say so with current_unit="pA" (--current-unit pA)'
        )
    return np.asarray(values, np.float64)


def check_voltage_mV(values: np.ndarray, source: str) -> None:
    """Refuse a membrane voltage whose amplitude is implausible for mV (e.g. volts, or all zeros).

    Raises:
        DataImportError: ``max |V|`` outside :data:`PLAUSIBLE_MAX_MV`.
    """
    peak = float(np.max(np.abs(values))) if np.size(values) else 0.0
    low, high = PLAUSIBLE_MAX_MV
    if not low <= peak <= high:
        hint = " (all zeros: a hidden voltage?)" if peak == 0 else " (volts instead of mV?)" if peak < low else ""
        raise DataImportError(f"{source}: voltage amplitude max |V| = {peak:.3g} is implausible for mV{hint}")


# -- compact storage of imported voltage ---------------------------------------------------
#: int16 step used to store imported voltage (mV): 1/256 mV, the grid of the 2007 recordings,
#: far below recording noise; int16 then spans +-128 mV
VOLTAGE_LSB_MV = 1.0 / 256.0


def voltage_storage(voltage_mV: np.ndarray) -> tuple[float | None, float]:
    """How to store a voltage: ``(lsb_mV or None for float32, largest rounding error in mV)``."""
    v = np.asarray(voltage_mV, np.float64)
    if v.size == 0 or np.max(np.abs(v)) / VOLTAGE_LSB_MV > 32767:
        return None, 0.0
    error = float(np.max(np.abs(v - np.round(v / VOLTAGE_LSB_MV) * VOLTAGE_LSB_MV)))
    return VOLTAGE_LSB_MV, error
