"""Sweeps from acquisition files read with Neo (Axon ABF, Igor, NIX, WinWCP, AxoGraph, Spike2...).

:func:`read_sweeps` turns one or more files into :class:`Sweep` s, each the membrane voltage
(mV) and injected current (pA) of one sweep, all of one sampling step (of any lengths). Neo picks
the reader from the file's suffix (``neo.io.get_io``). Where the current comes from:

- a recorded channel of the same file (``current_channel``; default: its first channel in
  a current unit);
- a second set of files (``current_files``, e.g. Igor waves: one wave per file): the k-th
  current file holds the current of the k-th voltage file, sweep by sweep (the pairing rule);
- the ABF protocol (``current_from_protocol``): the command waveform Neo reconstructs from
  the protocol's epochs (``AxonIO.read_raw_protocol()``); refused where the protocol plays a
  stimulus file, which Neo does not render.

Units come from the files and are converted (V, mV, uV -> mV; A, nA, pA -> pA, through
``quantities``); a channel without a unit, in the wrong kind of unit, or with an implausible
amplitude (:data:`~qsnmc.challenges.textdata.PLAUSIBLE_MAX_MV`,
:data:`~qsnmc.challenges.textdata.PLAUSIBLE_MAX_PA`) is refused naming the file and channel.
Sweeps are numbered from 1 across the files in the order given (pClamp numbers them from 1);
``--sweeps`` selects among them. Neo is imported here only, when a file is read.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qsnmc.challenges.textdata import PLAUSIBLE_MAX_PA, DataImportError, check_voltage_mV

NEO_MISSING = "import-neo needs Neo: pip install -e '.[neo]' (or: pip install neo igor2)"


@dataclass
class Sweep:
    """One sweep: the membrane voltage and injected current over its whole length.

    Attributes:
        number: 1-based number across the files, in the order given.
        file: the file the voltage came from.
        index: 0-based index of the sweep (Neo segment) within that file.
        dt_s: sampling step (s).
        voltage_mV: membrane voltage (mV), shape ``(n_samples,)``.
        current_pA: injected current (pA), shape ``(n_samples,)``.
    """

    number: int
    file: Path
    index: int
    dt_s: float
    voltage_mV: np.ndarray
    current_pA: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.file.name} sweep {self.index + 1}"


@dataclass
class Channel:
    """One channel of a file's sweeps: name, unit and the signal column in each Neo segment."""

    name: str
    unit: str
    signals: list[Any] = field(default_factory=list)  # (AnalogSignal, column) per segment


def _neo() -> Any:
    try:
        import neo
    except ImportError as exc:
        raise DataImportError(NEO_MISSING) from exc
    return neo


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:160] + "...") if len(text) > 160 else text or type(exc).__name__


def _read_block(path: Path) -> tuple[Any, Any]:
    """The Neo IO and the first Block of ``path``, or a one-line error naming the file."""
    neo = _neo()
    if not path.is_file():
        raise DataImportError(f"{path}: no such file")
    try:
        io = neo.io.get_io(str(path), **({"mode": "ro"} if path.suffix.lower() == ".nix" else {}))
    except Exception as exc:  # noqa: BLE001 - Neo raises many kinds for a file it does not know
        raise DataImportError(f"{path}: Neo cannot read it ({_line(exc)})") from exc
    try:
        kwargs = {"signal_group_mode": "split-all"} if "signal_group_mode" in inspect.signature(
            io.read_block).parameters else {}
        block = io.read_block(lazy=False, **kwargs)
    except Exception as exc:  # noqa: BLE001
        _close(io)
        raise DataImportError(f"{path}: Neo cannot read it with {type(io).__name__} ({_line(exc)})") from exc
    if block is None or not block.segments:
        _close(io)
        raise DataImportError(f"{path}: no sweeps (Neo {type(io).__name__} found no segments)")
    return io, block


def _close(io: Any) -> None:
    close = getattr(io, "close", None)
    if callable(close):
        close()


def _channels(block: Any, path: Path) -> list[Channel]:
    """The channels of a block's sweeps, in the order of the first segment's signals (columns split)."""
    channels: list[Channel] = []
    for k, segment in enumerate(block.segments):
        found: list[tuple[str, str, Any, int]] = []
        for signal in segment.analogsignals:
            names = signal.array_annotations.get("channel_names") if signal.array_annotations else None
            for col in range(signal.shape[1]):
                name = str(names[col]) if names is not None and len(names) > col else str(signal.name or "")
                name = name or f"channel {len(found)}"
                found.append((name, signal.units.dimensionality.string, signal, col))
        if k == 0:
            channels = [Channel(name, unit) for name, unit, _, _ in found]
        elif [(c.name, c.unit) for c in channels] != [(n, u) for n, u, _, _ in found]:
            raise DataImportError(f"{path}: sweep {k + 1} has channels {', '.join(n for n, *_ in found)}, sweep 1 "
                                  f"{', '.join(c.name for c in channels)}: one set of channels per file")
        for channel, (_, _, signal, col) in zip(channels, found):
            channel.signals.append((signal, col))
    if not channels:
        raise DataImportError(f"{path}: no analog signals")
    return channels


def _listing(channels: Sequence[Channel]) -> str:
    return ", ".join(f"{i}: {c.name} ({c.unit})" for i, c in enumerate(channels))


def _kind(unit: str) -> str | None:
    """``"voltage"``, ``"current"`` or None: the kind of quantity a unit measures."""
    import quantities as pq

    try:
        q = pq.Quantity(1.0, unit)
    except Exception:  # noqa: BLE001 - an unknown unit string
        return None
    for kind, target in (("voltage", pq.mV), ("current", pq.pA)):
        try:
            q.rescale(target)
            return kind
        except ValueError:
            continue
    return None


def _no_current_hint(kind: str, path: Path) -> str:
    """Where else a current that was not recorded comes from: the ABF protocol, or other files."""
    if kind != "current":
        return ""
    if path.suffix.lower() == ".abf":
        return ", or, if the current was not recorded, take it from the protocol with --current-from-protocol"
    return ", or give the files that hold it with --current-files"


def _pick(channels: Sequence[Channel], wanted: str | None, kind: str, path: Path, option: str) -> Channel:
    """The channel named (or numbered) by ``wanted``, else the first of the right kind of unit."""
    if wanted is None:
        for channel in channels:
            if _kind(channel.unit) == kind:
                return channel
        raise DataImportError(f"{path}: no channel in a {kind} unit (channels: {_listing(channels)}); "
                              f"choose one with {option} NAME|INDEX" + _no_current_hint(kind, path))
    match = [c for c in channels if c.name == wanted]
    if not match and re.fullmatch(r"\d+", wanted.strip()) and int(wanted) < len(channels):
        match = [channels[int(wanted)]]
    if not match:
        raise DataImportError(f"{path}: {option} {wanted}: no such channel (channels: {_listing(channels)})")
    channel = match[0]
    if _kind(channel.unit) != kind:
        unit = channel.unit if channel.unit not in ("", "dimensionless") else "no unit"
        expected = "mV or V" if kind == "voltage" else "pA, nA or A"
        raise DataImportError(f"{path}: channel {channel.name} is in {unit}, not a {kind} ({expected}): "
                              f"choose {option} among: {_listing(channels)}")
    return channel


def _values(signal: Any, col: int, target: str) -> np.ndarray:
    """One column of a Neo signal in ``target`` units (float64)."""
    import quantities as pq

    factor = float(pq.Quantity(1.0, signal.units.dimensionality.string).rescale(target).magnitude)
    return np.asarray(signal.magnitude[:, col], np.float64) * factor


def _dt_s(signal: Any) -> float:
    return float(signal.sampling_period.rescale("s").magnitude)


def _protocol_currents(io: Any, path: Path, n_sweeps: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The command current (pA) of each sweep, from an ABF file's protocol, and what was used."""
    if not hasattr(io, "read_raw_protocol"):
        raise DataImportError(f"{path}: --current-from-protocol needs an Axon ABF file (read by {type(io).__name__})")
    try:
        sweeps, names, units = io.read_raw_protocol()
    except Exception as exc:  # noqa: BLE001 - ABF1, or a protocol Neo cannot rebuild
        raise DataImportError(f"{path}: no protocol waveform: {_line(exc)}") from exc
    dacs = [k for k, u in enumerate(units) if _kind(str(u)) == "current"]
    info = getattr(io, "_axon_info", {}) or {}
    dac_info = info.get("listDACInfo") or []
    enabled = [k for k in dacs if k < len(dac_info) and dac_info[k].get("nWaveformEnable")]
    if not (enabled or dacs) or len(sweeps) != n_sweeps:
        raise DataImportError(f"{path}: --current-from-protocol: no command in a current unit among the protocol's "
                              f"outputs ({', '.join(f'{n} ({u})' for n, u in zip(names, units))})")
    dac = (enabled or dacs)[0]
    if dac < len(dac_info) and dac_info[dac].get("nWaveformSource") == 2:
        raise DataImportError(f"{path}: --current-from-protocol: output {names[dac]} plays a stimulus file "
                              f"({info.get('sProtocolPath', 'protocol')}), which Neo does not rebuild; record the "
                              "current on a channel and use --current-channel")
    import quantities as pq

    factor = float(pq.Quantity(1.0, str(units[dac])).rescale(pq.pA).magnitude)
    currents = [np.asarray(s[dac], np.float64) * factor for s in sweeps]
    used = {"current": f"the ABF protocol's command waveform, output {names[dac]} ({units[dac]}), rebuilt from its "
                       "epochs by Neo's AxonIO.read_raw_protocol(); not a recorded current",
            "protocol": str(info.get("sProtocolPath", ""))}
    return currents, used


def _recorded_when(block: Any) -> dict[str, Any]:
    """When a file's recording started (ISO 8601, from its header) and how long it ran (s), where the file says."""
    when = getattr(block, "rec_datetime", None)
    if when is None:
        return {}
    try:
        span = max(float(s.t_stop.rescale("s").magnitude) for s in block.segments)
    except (AttributeError, ValueError):
        return {}
    return {"recorded_at": when.isoformat(), "recording_span_s": round(span, 6)}


def check_one_session(files: Sequence[dict[str, Any]], max_gap_s: float) -> str:
    """Refuse files recorded too far apart to be one cell's; say what was checked ("" for one file).

    Each dict is a file's facts (``file``, and ``recorded_at`` and ``recording_span_s`` where
    the file's header has them). Ordered by their start, each file must start within
    ``max_gap_s`` of the end of the one before: the protocols of one cell follow each other
    within a session, while a new cell takes a new patch (minutes).

    Raises:
        DataImportError: a gap longer than ``max_gap_s``, naming both files.
    """
    from datetime import datetime, timedelta

    if len(files) < 2:
        return ""
    undated = [Path(f["file"]).name for f in files if "recorded_at" not in f]
    if undated:
        return f"not checked: {', '.join(undated)} hold{'s' * (len(undated) == 1)} no recording time"
    timed = sorted((datetime.fromisoformat(f["recorded_at"]), f) for f in files)
    for (start_a, a), (start_b, b) in zip(timed, timed[1:]):
        end_a = start_a + timedelta(seconds=a["recording_span_s"])
        gap = (start_b - end_a).total_seconds()
        if gap > max_gap_s:
            raise DataImportError(
                f"{b['file']}: recorded {gap / 60:.1f} min after {Path(a['file']).name} ended "
                f"({end_a:%Y-%m-%d %H:%M:%S} -> {start_b:%H:%M:%S}), more than --session-gap {max_gap_s / 60:g} "
                "min: files of another cell? The files of one challenge come from one recording session")
    span = (timed[-1][0] + timedelta(seconds=timed[-1][1]["recording_span_s"]) - timed[0][0]).total_seconds()
    return (f"one session: {len(files)} files recorded {timed[0][0]:%Y-%m-%d %H:%M:%S} to +{span / 60:.1f} min, "
            f"gaps <= {max_gap_s / 60:g} min")


def parse_sweeps(spec: str, n_sweeps: int, files: str) -> list[int]:
    """1-based sweep numbers from a spec such as ``"1-4,7,9-"`` (``N-`` runs to the last sweep).

    Raises:
        DataImportError: a malformed spec, or a number outside ``1..n_sweeps``, naming ``files``.
    """
    chosen: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        m = re.fullmatch(r"(\d+)(?:\s*(-)\s*(\d*))?", part)
        if not m:
            raise DataImportError(f"--sweeps {spec}: {part!r} is not N, N-M or N- (sweeps are numbered from 1)")
        first = int(m[1])
        last = (int(m[3]) if m[3] else n_sweeps) if m[2] else first
        for k in (first, last):
            if not 1 <= k <= n_sweeps:
                raise DataImportError(f"--sweeps {spec}: sweep {k} out of range: {files} hold{'s' * (',' not in files)}"
                                      f" {n_sweeps} sweeps (1-{n_sweeps})")
        if last < first:
            raise DataImportError(f"--sweeps {spec}: {part} runs backwards")
        chosen += [k for k in range(first, last + 1) if k not in chosen]
    if not chosen:
        raise DataImportError(f"--sweeps {spec!r}: selects no sweep")
    return chosen


def _file_sweeps(path: Path, voltage_channel: str | None, current_channel: str | None, current_file: Path | None,
                 from_protocol: bool) -> tuple[list[tuple[float, np.ndarray, np.ndarray]], dict[str, Any]]:
    """``(dt_s, voltage_mV, current_pA)`` of each sweep of one file, and its channels for the manifest."""
    io, block = _read_block(path)
    try:
        channels = _channels(block, path)
        v_channel = _pick(channels, voltage_channel, "voltage", path, "--voltage-channel")
        facts: dict[str, Any] = {"reader": f"neo.io.{type(io).__name__}", "sweeps": len(block.segments),
                                 "voltage_channel": f"{v_channel.name} ({v_channel.unit})", **_recorded_when(block)}
        i_dts: list[float] | None = None  # the current's sampling steps (s), where it is a recorded channel
        if from_protocol:
            currents, used = _protocol_currents(io, path, len(block.segments))
            facts.update(used)
        elif current_file is None:
            i_channel = _pick(channels, current_channel, "current", path, "--current-channel")
            currents = [_values(s, c, "pA") for s, c in i_channel.signals]
            i_dts = [_dt_s(s) for s, _ in i_channel.signals]
            facts["current_channel"] = f"{i_channel.name} ({i_channel.unit})"
    finally:
        _close(io)
    if current_file is not None:
        c_io, c_block = _read_block(current_file)
        try:
            c_channels = _channels(c_block, current_file)
            i_channel = _pick(c_channels, current_channel, "current", current_file, "--current-channel")
            if len(i_channel.signals) != len(v_channel.signals):
                raise DataImportError(f"{current_file}: {len(i_channel.signals)} sweeps, its voltage file {path.name} "
                                      f"{len(v_channel.signals)}: --current-files pair file by file, sweep by sweep")
            currents = [_values(s, c, "pA") for s, c in i_channel.signals]
            i_dts = [_dt_s(s) for s, _ in i_channel.signals]
        finally:
            _close(c_io)
        facts["current_channel"] = f"{i_channel.name} ({i_channel.unit}) of {current_file.name}"
        facts["current_file"] = str(current_file)
    sweeps = []
    for k, (signal, col) in enumerate(v_channel.signals):
        voltage = _values(signal, col, "mV")
        dt = _dt_s(signal)
        if i_dts is not None and abs(i_dts[k] - dt) > 1e-9 * dt:
            raise DataImportError(f"{current_file or path}: sweep {k + 1}: current sampled at {1 / i_dts[k]:g} Hz, "
                                  f"voltage ({path.name}) at {1 / dt:g} Hz")
        if currents[k].size != voltage.size:
            raise DataImportError(f"{path}: sweep {k + 1}: {voltage.size} voltage samples, {currents[k].size} "
                                  "current samples")
        sweeps.append((dt, voltage, currents[k]))
    return sweeps, facts


def read_sweeps(
    files: Sequence[str | Path],
    *,
    voltage_channel: str | None = None,
    current_channel: str | None = None,
    current_files: Sequence[str | Path] = (),
    current_from_protocol: bool = False,
    sweeps: str | None = None,
) -> tuple[list[Sweep], dict[str, Any]]:
    """The selected sweeps of ``files`` (see the module docstring) and what was read, for the manifest.

    Args:
        files: the acquisition files, read in this order (sweeps numbered from 1 across them).
        voltage_channel: name or 0-based index of the voltage channel (default: the first in mV or V).
        current_channel: name or index of the current channel (default: the first in pA, nA or A).
        current_files: one file per voltage file holding its current (the pairing rule above).
        current_from_protocol: take the current from the ABF protocol instead of a channel.
        sweeps: 1-based selection such as ``"1-4,7"`` (default: every sweep).

    Raises:
        DataImportError: a file Neo cannot read, an unknown channel (listing those that exist),
            a channel in the wrong unit or with an implausible amplitude, sweeps of different
            sampling rates, or a ``sweeps`` spec out of range; naming the file. Sweeps may differ
            in length (a stimulus' repetitions are of one length: see :mod:`~qsnmc.challenges.repetitions`).
    """
    paths = [Path(f).resolve() for f in files]
    if not paths:
        raise DataImportError("no file given")
    current_paths = [Path(f).resolve() for f in current_files]
    if current_paths and current_from_protocol:
        raise DataImportError("--current-files and --current-from-protocol: give one source of the current")
    if current_paths and len(current_paths) != len(paths):
        raise DataImportError(f"--current-files: {len(current_paths)} files for {len(paths)} voltage files: the "
                              "k-th current file holds the current of the k-th voltage file")
    read: list[Sweep] = []
    per_file = []
    for k, path in enumerate(paths):
        got, facts = _file_sweeps(path, voltage_channel, current_channel,
                                  current_paths[k] if current_paths else None, current_from_protocol)
        per_file.append({"file": str(path), **facts})
        for index, (dt, voltage, current) in enumerate(got):
            read.append(Sweep(len(read) + 1, path, index, dt, voltage, current))
    names = ", ".join(p.name for p in paths)
    chosen = read if sweeps is None else [read[k - 1] for k in parse_sweeps(sweeps, len(read), names)]
    first = chosen[0]
    for s in chosen[1:]:
        if abs(s.dt_s - first.dt_s) > 1e-9 * first.dt_s:
            raise DataImportError(f"{s.file}: {s.label} sampled at {1 / s.dt_s:g} Hz, {first.label} at "
                                  f"{1 / first.dt_s:g} Hz: one rate per challenge (choose sweeps with --sweeps)")
    for s in chosen:
        for values in (s.voltage_mV, s.current_pA):
            bad = np.flatnonzero(~np.isfinite(values)) if not np.isfinite(values.sum()) else ()  # one pass if clean
            if len(bad):
                raise DataImportError(f"{s.file}: {s.label}: missing (NaN) or infinite sample at "
                                      f"{bad[0] * s.dt_s:g} s")
    for per in per_file:
        mine = [s for s in chosen if str(s.file) == per["file"]]
        if not mine:
            continue
        where = f"{per['file']}: voltage channel {per['voltage_channel']}"
        check_voltage_mV(np.array([max(float(np.max(np.abs(s.voltage_mV))) for s in mine)]), where)  # max |V| only
        peak = max(float(np.max(np.abs(s.current_pA))) for s in mine)
        low, high = PLAUSIBLE_MAX_PA
        if not low <= peak <= high:
            what = per.get("current_channel") or "protocol command"
            raise DataImportError(f"{per['file']}: current {what}: amplitude max |I| = {peak:.3g} pA is implausible "
                                  f"(expected {low:g} to {high:g} pA): is it the injected current, in its stated unit?")
    facts = {"files": per_file, "sweeps_selected": sweeps or "all",
             "sweep_numbers": {s.number: s.label for s in chosen}}
    return chosen, facts
