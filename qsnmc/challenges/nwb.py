"""Challenges from NWB current-clamp recordings, and any challenge written back as an NWB file.

**Import** (:func:`import_nwb`): every ``CurrentClampSeries`` in the file's acquisition is a
sweep (a response, in volts times its ``conversion``), paired with its
``CurrentClampStimulusSeries`` through the intracellular recordings table (else by equal
``sweep_number``). Sweeps are grouped into stimuli, their repetitions, by the icephys
tables (the sweeps of the sequential recordings of one ``stimulus_type``), or by the user
(``stimuli={"NAME": ["SWEEP", ...]}``, a sweep named by its series name or its
``sweep_number``). Values are converted with the file's ``conversion`` and ``offset`` (and a
unit string where a writer put mV, pA or nA) to mV and pA; the sampling step comes from the
``rate`` (or uniform ``timestamps``). The sweeps of one stimulus must carry the same current
within ``current_tolerance_pA``. Spikes are the harness's: upward crossings of
``threshold_mV`` (0 mV by default). The split is chosen as in :mod:`qsnmc.challenges.split`.

**Export** (:func:`export_nwb`): one sweep per repetition of each stimulus, its current (linked
from the stimulus' first sweep, so stored once) and its voltage over the whole protocol, NaN
where the challenge holds no voltage (a challenge keeps the training window's voltage only; the
test window's is hidden or was never kept). The icephys tables are filled: one intracellular
and one simultaneous recording per sweep, one sequential recording per stimulus
(``stimulus_type`` = the stimulus' name), one repetition row holding them all. Because the
test window's voltage is absent, the recorded spike times go into a processing module
``qsnmc`` (the file then holds the hidden test data: share it, never give it to a model):

- ``qsnmc_sweeps``: per sweep, its ``response`` series, ``stimulus``, ``repetition`` and
  ``spike_times`` (s from the start of the sweep, the challenge's own spike times);
- ``qsnmc_stimuli``: per stimulus, training and test windows (s; NaN = none) and why a
  stimulus is training-only (``test_excluded``);
- ``qsnmc_settings``: one row: challenge name, challenge_description, Delta (s), threshold (mV), dt (s).

Importing such a file without split options restores the challenge unchanged (same
currents, training voltage, spike times, windows, R); with split options its spike times
are still the module's (the test-window voltage is absent).
"""
from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from qsnmc.challenges.recorded import (
    CURRENT_TOLERANCE_PA, detect_trains, source_of, spike_rule, stimulus_current, write_recorded,
)
from qsnmc.challenges.split import Recording, Split
from qsnmc.challenges.store import Challenge, ChallengeStimulus
from qsnmc.challenges.textdata import DataImportError

MODULE = "qsnmc"
SWEEPS_TABLE = "qsnmc_sweeps"
STIMULI_TABLE = "qsnmc_stimuli"
SETTINGS_TABLE = "qsnmc_settings"
IMPORTER = "qsnmc.challenges.nwb"
#: SI value of one unit as NWB writers spell it (NWB 2.1+ fixes volts and amperes; some older
#: writers put the unit they recorded in)
VOLTAGE_UNITS = {"volts": 1.0, "volt": 1.0, "v": 1.0, "millivolts": 1e-3, "mv": 1e-3}
CURRENT_UNITS = {"amperes": 1.0, "ampere": 1.0, "a": 1.0, "nanoamperes": 1e-9, "na": 1e-9,
                 "picoamperes": 1e-12, "pa": 1e-12}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
#: the Subject an export names when nothing is known (a challenge keeps no subject): the NCBI
#: taxonomy's root (any organism), sex "U" (unknown), age "P0D/" (0 days or older)
UNKNOWN_SUBJECT = {
    "species": "http://purl.obolibrary.org/obo/NCBITaxon_1", "sex": "U", "age": "P0D/",
    "description": "unknown: the qsnmc challenge records no subject (species = NCBI taxonomy root, sex U, age P0D/)",
}


@dataclass
class _Sweep:
    """One current-clamp sweep: its response and stimulus series (and the samples the tables select)."""

    name: str
    response: Any
    stimulus: Any
    response_slice: slice = field(default_factory=lambda: slice(None))
    stimulus_slice: slice = field(default_factory=lambda: slice(None))


@contextmanager
def _read(path: Path) -> Iterator[Any]:
    """The NWBFile of ``path``, refusing anything pynwb cannot read with a one-line error."""
    import h5py
    from pynwb import NWBHDF5IO

    if not path.is_file():
        raise DataImportError(f"{path}: no such file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise DataImportError(f"{path}: cannot read: {exc}") from exc
    if not is_hdf5:
        raise DataImportError(f"{path}: not an NWB file (not HDF5)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            io = NWBHDF5IO(str(path), "r")
        except Exception as exc:  # h5py and hdmf raise many kinds for a damaged file
            raise DataImportError(f"{path}: not a readable NWB file (truncated or damaged?): {_line(exc)}") from exc
        try:
            try:
                nwbfile = io.read()
            except Exception as exc:
                raise DataImportError(f"{path}: not a readable NWB file: {_line(exc)}") from exc
            yield nwbfile
        finally:
            io.close()


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:200] + "...") if len(text) > 200 else text or type(exc).__name__


def _ref_slice(ref: Any) -> slice:
    start, count = int(ref.idx_start), int(ref.count)
    return slice(None) if start < 0 or count < 0 else slice(start, start + count)


def _sweeps(nwbfile: Any, path: Path) -> dict[str, _Sweep]:
    """Every current-clamp sweep by its response's name, each paired with its stimulus series."""
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries, IZeroClampSeries

    responses = {n: ts for n, ts in nwbfile.acquisition.items()
                 if isinstance(ts, CurrentClampSeries) and not isinstance(ts, IZeroClampSeries)}
    if not responses:
        found = sorted({type(ts).__name__ for ts in nwbfile.acquisition.values()}) or ["nothing"]
        raise DataImportError(f"{path}: no current-clamp data (no CurrentClampSeries in acquisition; "
                              f"found {', '.join(found)})")
    sweeps: dict[str, _Sweep] = {}
    table = nwbfile.intracellular_recordings
    if table is not None and len(table):
        for i in range(len(table)):
            response = table["responses"]["response"].get(i)
            stimulus = table["stimuli"]["stimulus"].get(i)
            ts = response.timeseries if response is not None else None
            if ts is None or ts.name not in responses or stimulus is None or int(stimulus.idx_start) < 0:
                continue
            if not isinstance(stimulus.timeseries, CurrentClampStimulusSeries):
                raise DataImportError(f"{path}: sweep {ts.name}: its stimulus {stimulus.timeseries.name} is a "
                                      f"{type(stimulus.timeseries).__name__}, expected a CurrentClampStimulusSeries")
            sweeps[ts.name] = _Sweep(ts.name, ts, stimulus.timeseries, _ref_slice(response), _ref_slice(stimulus))
    by_number = {ts.sweep_number: ts for ts in nwbfile.stimulus.values()
                 if isinstance(ts, CurrentClampStimulusSeries) and ts.sweep_number is not None}
    for name, ts in responses.items():
        if name not in sweeps and ts.sweep_number is not None and ts.sweep_number in by_number:
            sweeps[name] = _Sweep(name, ts, by_number[ts.sweep_number])
    unpaired = [n for n in responses if n not in sweeps]
    if unpaired and not sweeps:
        raise DataImportError(f"{path}: sweep {unpaired[0]}: no CurrentClampStimulusSeries paired with it (in the "
                              "intracellular recordings table, or with the same sweep_number): its current is unknown")
    return sweeps


def _table_groups(nwbfile: Any, sweeps: dict[str, _Sweep]) -> dict[str, list[str]]:
    """Current-clamp sweeps by stimulus from the icephys tables: the sequential recordings of one stimulus_type.

    A stimulus_type becomes a stimulus name with every run of characters other than letters,
    digits, ``-`` and ``_`` replaced by ``_`` ("Long Square" -> "Long_Square").
    """
    seq = nwbfile.icephys_sequential_recordings
    if seq is None or not len(seq):
        return {}
    sim = nwbfile.icephys_simultaneous_recordings
    table = nwbfile.intracellular_recordings
    groups: dict[str, list[str]] = {}
    for i in range(len(seq)):
        kind = re.sub(r"[^A-Za-z0-9_-]+", "_", str(seq["stimulus_type"][i]).strip()).strip("_") or "stimulus"
        for j in seq["simultaneous_recordings"].get(i, index=True):
            for k in sim["recordings"].get(int(j), index=True):
                response = table["responses"]["response"].get(int(k))
                if response is not None and response.timeseries is not None and response.timeseries.name in sweeps:
                    groups.setdefault(kind, []).append(response.timeseries.name)
    return groups


def _user_groups(stimuli: dict[str, Sequence[str]], sweeps: dict[str, _Sweep], path: Path) -> dict[str, list[str]]:
    """``--stimulus NAME=SWEEP,...`` resolved: a sweep by series name or by sweep_number."""
    by_number = {str(s.response.sweep_number): n for n, s in sweeps.items() if s.response.sweep_number is not None}
    groups = {}
    for name, wanted in stimuli.items():
        names = []
        for w in wanted:
            w = str(w).strip()
            if w in sweeps:
                names.append(w)
            elif w in by_number:
                names.append(by_number[w])
            else:
                raise DataImportError(f"--stimulus {name}={','.join(map(str, wanted))}: {path} has no current-clamp "
                                      f"sweep {w!r} (sweeps: {', '.join(sorted(sweeps))})")
        groups[name] = names
    return groups


def _in_unit(series: Any, where: str, units: dict[str, float], target_si: float, expected: str) -> np.ndarray:
    """A series' samples in the target unit (``target_si``: its SI value, 1e-3 for mV, 1e-12 for pA)."""
    # the file's own attribute: pynwb reports the schema's fixed unit even where the file has none
    attrs = getattr(series.data, "attrs", None)
    unit = attrs.get("unit") if attrs is not None else getattr(series, "unit", None)
    unit = unit.decode() if isinstance(unit, bytes) else unit
    if not unit or str(unit).strip().lower() not in units:
        raise DataImportError(f"{where}: unit {unit!r} missing or unknown (expected {expected})")
    data = series.data
    dtype = getattr(data, "dtype", None)
    if dtype is None or not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise DataImportError(f"{where}: data of type {dtype}, expected numbers")
    values = np.asarray(data[:], np.float64)
    if values.ndim != 1:
        raise DataImportError(f"{where}: data of shape {values.shape}, expected one sample per time point (1-D)")
    conversion = float(series.conversion if series.conversion is not None else 1.0)
    offset = float(getattr(series, "offset", 0.0) or 0.0)
    # conversion * unit / target: exactly 1 for data stored in the target unit (1e-12 / 1e-12)
    factor = conversion * units[str(unit).strip().lower()] / target_si
    return values * factor + offset * units[str(unit).strip().lower()] / target_si


def _dt_s(series: Any, where: str) -> float:
    if series.rate is not None:
        if not series.rate > 0:
            raise DataImportError(f"{where}: sampling rate {series.rate} Hz, expected a positive rate")
        return 1.0 / float(series.rate)
    stamps = np.asarray(series.timestamps[:], np.float64) if series.timestamps is not None else np.zeros(0)
    steps = np.diff(stamps)
    if steps.size == 0 or not np.all(steps > 0) or np.ptp(steps) > 1e-6 * steps.mean():
        raise DataImportError(f"{where}: neither a rate nor uniform timestamps: the sampling step is unknown")
    return float(steps.mean())


def _stored(nwbfile: Any) -> dict[str, Any] | None:
    """What a qsnmc export stored (spike times, windows, settings), or None for another file."""
    module = nwbfile.processing.get(MODULE)
    if module is None or SWEEPS_TABLE not in module.data_interfaces:
        return None
    sweeps = module[SWEEPS_TABLE]
    spikes = {str(sweeps["response"][i]): np.asarray(sweeps["spike_times"][i], np.float64) for i in range(len(sweeps))}
    stored: dict[str, Any] = {"spikes": spikes, "windows": {}, "settings": None}
    if STIMULI_TABLE in module.data_interfaces:
        table = module[STIMULI_TABLE]
        for i in range(len(table)):
            def window(kind: str) -> tuple[float, float] | None:
                start, stop = float(table[f"{kind}_start_s"][i]), float(table[f"{kind}_stop_s"][i])
                return None if np.isnan(start) else (start, stop)

            stored["windows"][str(table["stimulus"][i])] = (window("train"), window("test"),
                                                             str(table["test_excluded"][i]))
    if SETTINGS_TABLE in module.data_interfaces:
        table = module[SETTINGS_TABLE]
        stored["settings"] = {c: table[c][0] for c in ("challenge", "challenge_description", "delta_s", "threshold_mV", "dt_s")}
    return stored


def _read_recordings(
    path: Path, stimuli: dict[str, Sequence[str]] | None, threshold_mV: float, tolerance_pA: float,
) -> tuple[list[Recording], dict[str, Any] | None, dict[str, Any]]:
    """The recorded stimuli of an NWB file, what a qsnmc export stored in it, and facts for the provenance."""
    with _read(path) as nwbfile:
        sweeps = _sweeps(nwbfile, path)
        groups = _user_groups(stimuli, sweeps, path) if stimuli else _table_groups(nwbfile, sweeps)
        if not groups:
            raise DataImportError(
                f"{path}: no icephys tables group its {len(sweeps)} current-clamp sweeps into stimuli: name the "
                f"repetitions of each with --stimulus NAME=SWEEP,SWEEP,... (sweeps: {', '.join(sorted(sweeps))})"
            )
        stored = _stored(nwbfile)
        dt_stored = float(stored["settings"]["dt_s"]) if stored and stored["settings"] else None
        recordings, dts = [], {}
        for name, members in groups.items():
            if not NAME_PATTERN.match(name):
                raise DataImportError(f"{path}: stimulus name {name!r}: use letters, digits, '-' and '_' "
                                      "(name the sweeps with --stimulus NAME=SWEEP,...)")
            missing = [m for m in members if m not in sweeps]
            if missing:
                raise DataImportError(f"{path}: stimulus {name}: sweep {missing[0]} has no current-clamp stimulus")
            currents, voltages = [], []
            for m in members:
                sweep = sweeps[m]
                where = f"{path}: sweep {m}"
                voltage = _in_unit(sweep.response, where + " (response)", VOLTAGE_UNITS, 1e-3, "volts")
                current = _in_unit(sweep.stimulus, where + f" (stimulus {sweep.stimulus.name})", CURRENT_UNITS,
                                   1e-12, "amperes")
                voltage, current = voltage[sweep.response_slice], current[sweep.stimulus_slice]
                dt_v, dt_i = _dt_s(sweep.response, where), _dt_s(sweep.stimulus, where + " (stimulus)")
                if abs(dt_v - dt_i) > 1e-9 * dt_v:
                    raise DataImportError(f"{where}: response sampled at {1 / dt_v:g} Hz, stimulus at {1 / dt_i:g} Hz")
                if voltage.size != current.size:
                    raise DataImportError(f"{where}: mismatched lengths: {voltage.size} voltage samples, "
                                          f"{current.size} current samples")
                if currents and voltage.size != currents[0].size:
                    raise DataImportError(f"{where}: {voltage.size} samples, sweep {members[0]} of the same stimulus "
                                          f"{name} has {currents[0].size}")
                if not np.all(np.isfinite(current)):
                    raise DataImportError(f"{where}: current missing (NaN) or infinite at some samples")
                dts[m] = dt_stored or dt_v
                currents.append(current)
                voltages.append(voltage)
            current, info = stimulus_current(name, np.stack(currents), members, tolerance_pA)
            voltage = np.stack(voltages)
            dt = dts[members[0]]
            if stored and all(m in stored["spikes"] for m in members):
                trains = [stored["spikes"][m] for m in members]
                info["spike_times"] = f"the file's processing/{MODULE}/{SWEEPS_TABLE} (a qsnmc export)"
            else:
                trains = detect_trains(voltage, dt, threshold_mV, f"{path}: stimulus {name}")
                info["spike_times"] = spike_rule(threshold_mV)
            info["spike_counts"] = [int(t.size) for t in trains]
            recordings.append(Recording(name, dt, current, voltage, trains, info))
        if len(set(dts.values())) > 1:
            raise DataImportError(f"{path}: sweeps sampled at different rates "
                                  f"({', '.join(sorted({f'{1 / d:g} Hz' for d in dts.values()}))}): one rate per challenge")
        facts = {"session_description": str(nwbfile.session_description), "identifier": str(nwbfile.identifier),
                 "grouping": "--stimulus (given)" if stimuli else "icephys sequential recordings (stimulus_type)"}
    return recordings, stored, facts


def _stored_stimuli(recordings: list[Recording], stored: dict[str, Any], path: Path) -> list[ChallengeStimulus]:
    """The challenge's stimuli with the windows a qsnmc export stored."""
    result = []
    for rec in recordings:
        if rec.name not in stored["windows"]:
            raise DataImportError(f"{path}: stimulus {rec.name} has no row in processing/{MODULE}/{STIMULI_TABLE}")
        train, test, excluded = stored["windows"][rec.name]
        if excluded:
            rec.info["test_excluded"] = excluded
        n_train = None if train is None else int(round((train[1] - train[0]) / rec.dt_s))
        first = None if train is None else int(round(train[0] / rec.dt_s))
        voltage = None if train is None else rec.voltage_mV[:, first:first + n_train]
        if voltage is not None and not np.all(np.isfinite(voltage)):
            raise DataImportError(f"{path}: stimulus {rec.name}: voltage missing (NaN) inside its training window")
        result.append(ChallengeStimulus(
            rec.name, rec.dt_s, rec.current_pA, len(rec.trains), train_window_s=train, train_voltage_mV=voltage,
            train_spikes_s=None if train is None else [t[(t >= train[0]) & (t < train[1])] for t in rec.trains],
            test_window_s=test,
            test_spikes_s=None if test is None else [t[(t >= test[0]) & (t <= test[1])] for t in rec.trains],
        ))
    return result


def import_nwb(
    src: str | Path,
    dest_dir: str | Path,
    *,
    name: str,
    stimuli: dict[str, Sequence[str]] | None = None,
    train_until_s: float | None = None,
    test_stimuli: Sequence[str] = (),
    r_floor: float = 0.3,
    delta_ms: float | None = None,
    threshold_mV: float | None = None,
    current_tolerance_pA: float = CURRENT_TOLERANCE_PA,
) -> Path:
    """Import the current-clamp recordings of an NWB file as a challenge at ``dest_dir``.

    Everything is read and checked before anything is written; the folder is then written
    atomically, so an error leaves nothing behind.

    Args:
        src: the NWB file.
        dest_dir: the challenge folder to write (replaced if it exists).
        name: the challenge's name.
        stimuli: ``{stimulus: [sweep, ...]}`` (series names or sweep numbers), the repetitions
            of each stimulus; None to take them from the file's icephys tables.
        train_until_s: time split (s): train before, test after (see :mod:`qsnmc.challenges.split`).
        test_stimuli: stimuli held out whole for the test.
        r_floor: least R in a test window for a stimulus to be tested.
        delta_ms: coincidence window (ms); default 4, or what a qsnmc export stored.
        threshold_mV: spike threshold (mV); default 0, or what a qsnmc export stored.
        current_tolerance_pA: largest difference (pA) between the currents of one stimulus' sweeps.

    Returns:
        ``dest_dir`` as a Path.

    Raises:
        DataImportError: a file that is not NWB, holds no current-clamp data, has mismatched
            lengths, unknown units, sweeps of one stimulus with different currents, or a
            split that leaves no training or no test data; the message names the file, sweep
            or option.
    """
    path = Path(src).resolve()
    threshold = 0.0 if threshold_mV is None else float(threshold_mV)
    try:
        recordings, stored, facts = _read_recordings(path, stimuli, threshold, float(current_tolerance_pA))
    except DataImportError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, OSError, AttributeError) as exc:
        # a file pynwb opens but whose content does not have the types and shapes NWB says
        raise DataImportError(f"{path}: unexpected NWB content: {_line(exc)}") from exc
    settings = (stored or {}).get("settings") or {}
    if threshold_mV is None and "threshold_mV" in settings:
        threshold = float(settings["threshold_mV"])
    delta_s = float(delta_ms) / 1e3 if delta_ms is not None else float(settings.get("delta_s", 0.004))
    provenance = {
        **source_of(path),
        "source": f"NWB file {path.name}",
        "importer": IMPORTER,
        "nwb": facts,
        "units": "response volts x conversion (+ offset) -> mV; stimulus amperes x conversion -> pA; "
                 "sampling step 1 / rate",
        "current_tolerance_pA": float(current_tolerance_pA),
        "delta_s": delta_s,
    }
    own_split = train_until_s is None and not test_stimuli
    if stored and own_split and stored["windows"]:
        return write_recorded(
            dest_dir, name=name, recordings=recordings, split=None, threshold_mV=threshold,
            provenance={**provenance, "split": f"the windows stored by the qsnmc export (challenge "
                                               f"{settings.get('challenge', '?')!r})"},
            description=str(settings.get("challenge_description") or f"from {path.name}"),
            stimuli=_stored_stimuli(recordings, stored, path),
        )
    split = Split(None if train_until_s is None else float(train_until_s), tuple(test_stimuli), float(r_floor), delta_s)
    return write_recorded(dest_dir, name=name, recordings=recordings, split=split, threshold_mV=threshold,
                          provenance=provenance, description=f"recordings of {path.name} (NWB)")


def check_nwb_file(path: str | Path) -> None:
    """A quick look at an NWB file before anything else is checked: it exists and pynwb reads it.

    Raises:
        DataImportError: a missing, non-HDF5 or unreadable file.
    """
    with _read(Path(path)):
        pass


# -- export -------------------------------------------------------------------------------------------
def export_nwb(challenge: Challenge, dest: str | Path, subject: dict[str, str] | None = None, *,
               public: bool = False) -> Path:
    """Write a challenge (hidden test spike times included) as an NWB file, written whole or not at all.

    See the module docstring for the layout. Voltage is stored as float32 mV
    (``conversion`` 1e-3), current as float32 pA (``conversion`` 1e-12), both gzip-compressed.
    The file passes the NWB Inspector without critical or best-practice-violation messages:
    it names a Subject (``subject`` overrides the fields of :data:`UNKNOWN_SUBJECT`, which
    say "unknown" in NWB's own terms) and the electrode's ``cell_id``.

    Args:
        challenge: the challenge to write.
        dest: the ``.nwb`` file.
        subject: Subject fields (``species``, ``age``, ``sex``, ``subject_id``, ``description``).
        public: ``challenge`` holds no test-window spikes (the public kit's, see
            :mod:`qsnmc.challenges.kit`); the file's notes say so instead of warning of hidden data.

    Returns:
        ``dest`` as a Path.
    """
    dest = Path(dest)
    nwbfile, electrode = _new_nwbfile(challenge, subject, public)
    sweep_rows = _add_sweeps(nwbfile, electrode, challenge)
    _add_qsnmc_tables(nwbfile, challenge, sweep_rows)
    _write_whole(nwbfile, dest)
    return dest


def _new_nwbfile(challenge: Challenge, subject: dict[str, str] | None, public: bool = False) -> tuple[Any, Any]:
    """An empty NWBFile for ``challenge`` with its Subject, amplifier and electrode; returns (file, electrode)."""
    from pynwb import NWBFile
    from pynwb.file import Subject

    nwbfile = NWBFile(
        session_description=challenge.description or challenge.name,
        identifier=f"qsnmc-{challenge.name}-{challenge.fingerprint()[:16]}",
        session_start_time=datetime(2000, 1, 1, tzinfo=timezone.utc),
        notes=f"qsnmc challenge {challenge.name!r}; processing/{MODULE} holds its recorded spike times, including "
              "the hidden test window's" if not public else
              f"public kit of the qsnmc challenge {challenge.name!r}: training windows only; processing/{MODULE} holds "
              "the training windows' spike times and the test windows to predict (no test-window recording)",
    )
    cell = re.sub(r"[^A-Za-z0-9_.-]+", "-", challenge.name)
    nwbfile.subject = Subject(**{**UNKNOWN_SUBJECT, "subject_id": cell, **(subject or {})})
    device = nwbfile.create_device(name="amplifier", description="as recorded for the challenge")
    electrode = nwbfile.create_icephys_electrode(name="electrode", description="whole-cell current clamp",
                                                 device=device, cell_id=cell)
    return nwbfile, electrode


def _add_sweeps(nwbfile: Any, electrode: Any, challenge: Challenge) -> dict[str, list]:
    """Add one current-clamp sweep per repetition and the icephys tables that group them.

    Returns the per-sweep rows (response name, stimulus, repetition, spike times in s) for the
    qsnmc sweeps table.
    """
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    sweep_rows: dict[str, list] = {"response": [], "stimulus": [], "repetition": [], "spike_times": []}
    start_s, number = 0.0, 0
    for s in challenge.stimuli:
        n = s.current_pA.shape[0]
        first = None
        simultaneous = []
        trains = [np.concatenate([a, b]) for a, b in zip(s.train_spikes_s or [np.zeros(0)] * s.n_repetitions,
                                                          s.test_spikes_s or [np.zeros(0)] * s.n_repetitions)]
        for r in range(s.n_repetitions):
            voltage = np.full(n, np.nan, np.float32)
            if s.train_window_s is not None:
                i0 = int(round(s.train_window_s[0] / s.dt_s))
                voltage[i0:i0 + s.train_voltage_mV.shape[1]] = s.train_voltage_mV[r]
            current = H5DataIO(np.asarray(s.current_pA, np.float32), compression="gzip", shuffle=True) \
                if first is None else first  # later sweeps link the first one's current
            stimulus = CurrentClampStimulusSeries(
                name=f"{s.name}_stimulus_{r:02d}", data=current, electrode=electrode, gain=1.0, rate=1.0 / s.dt_s,
                starting_time=start_s, conversion=1e-12, sweep_number=np.uint32(number),
                description=f"stimulus {s.name}, repetition {r}: injected current (pA x 1e-12 = A)",
            )
            first = first or stimulus
            response = CurrentClampSeries(
                name=f"{s.name}_{r:02d}", data=H5DataIO(voltage, compression="gzip", shuffle=True), electrode=electrode,
                gain=1.0, rate=1.0 / s.dt_s, starting_time=start_s, conversion=1e-3, sweep_number=np.uint32(number),
                description=f"stimulus {s.name}, repetition {r}: membrane voltage (mV x 1e-3 = V); NaN where the "
                            "challenge holds no voltage (outside its training window)",
            )
            nwbfile.add_stimulus(stimulus)
            nwbfile.add_acquisition(response)
            row = nwbfile.add_intracellular_recording(electrode=electrode, stimulus=stimulus, response=response)
            simultaneous.append(nwbfile.add_icephys_simultaneous_recording(recordings=[row]))
            sweep_rows["response"].append(response.name)
            sweep_rows["stimulus"].append(s.name)
            sweep_rows["repetition"].append(r)
            sweep_rows["spike_times"].append(trains[r])
            start_s += n * s.dt_s + 1.0
            number += 1
        nwbfile.add_icephys_sequential_recording(simultaneous_recordings=simultaneous, stimulus_type=s.name)
    nwbfile.add_icephys_repetition(sequential_recordings=list(range(len(challenge.stimuli))))
    return sweep_rows


def _add_qsnmc_tables(nwbfile: Any, challenge: Challenge, sweep_rows: dict[str, list]) -> None:
    """Add processing/qsnmc: the recorded spike times per sweep, the windows per stimulus, the settings."""
    from hdmf.common import DynamicTable, VectorData, VectorIndex

    module = nwbfile.create_processing_module(MODULE, "qsnmc challenge: recorded spike times, windows, settings")
    flat = np.concatenate(sweep_rows["spike_times"]) if sweep_rows["spike_times"] else np.zeros(0)
    times = VectorData(name="spike_times", description="recorded spike times (s from the start of the sweep)",
                       data=flat)
    ends = np.cumsum([t.size for t in sweep_rows["spike_times"]]).astype(np.int64)
    module.add(DynamicTable(name=SWEEPS_TABLE, description="per sweep: the challenge's recorded spike times", columns=[
        VectorData(name="response", description="the sweep's CurrentClampSeries", data=sweep_rows["response"]),
        VectorData(name="stimulus", description="the stimulus it repeats", data=sweep_rows["stimulus"]),
        VectorData(name="repetition", description="repetition number", data=sweep_rows["repetition"]),
        times, VectorIndex(name="spike_times_index", data=ends, target=times),
    ]))

    def win(w, k):
        return float("nan") if w is None else float(w[k])

    reasons = challenge.training_only_reasons()
    module.add(DynamicTable(name=STIMULI_TABLE, description="per stimulus: training and test windows (s; NaN = none)",
                            columns=[
        VectorData(name="stimulus", description="name", data=[s.name for s in challenge.stimuli]),
        *[VectorData(name=f"{kind}_{end}_s", description=f"{kind} window {end} (s)",
                     data=[win(getattr(s, f"{kind}_window_s"), k) for s in challenge.stimuli])
          for kind in ("train", "test") for k, end in enumerate(("start", "stop"))],
        VectorData(name="test_excluded", description="why a stimulus is training-only ('' if tested or test-only)",
                   data=[reasons.get(s.name, "") for s in challenge.stimuli]),
    ]))
    module.add(DynamicTable(name=SETTINGS_TABLE, description="the challenge's settings", columns=[
        VectorData(name="challenge", description="name", data=[challenge.name]),
        VectorData(name="challenge_description", description="what it is", data=[challenge.description or ""]),
        VectorData(name="delta_s", description="coincidence window (s)", data=[float(challenge.delta_s)]),
        VectorData(name="threshold_mV", description="spike threshold (mV)", data=[float(challenge.threshold_mV)]),
        VectorData(name="dt_s", description="sampling step (s)", data=[float(challenge.stimuli[0].dt_s)]),
    ]))


def _write_whole(nwbfile: Any, dest: Path) -> None:
    """Write ``nwbfile`` to ``dest`` through a temporary file beside it: whole or not at all."""
    import os
    import tempfile

    from pynwb import NWBHDF5IO

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with NWBHDF5IO(tmp, "w") as io:
                io.write(nwbfile)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
