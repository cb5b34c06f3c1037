"""A challenge on disk: public and hidden arrays, a manifest with checksums.

Layout of a challenge folder::

    manifest.json   name, settings (delta_s, threshold_mV), stimuli and windows,
                    units, sha256 of each file, R per test stimulus, provenance
    public.npz      what models may see: every stimulus' current, the training
                    window's voltage and spike times
    hidden.npz      what only the scoring process reads: the test window's spike
                    times (and voltage, where a challenge ships it)

Only the scoring process loads :class:`Challenge`; models receive the
:class:`qsnmc.data.TrainingData` and :class:`qsnmc.data.Stimulus` built from its
public part.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from qsnmc.challenges.qsnmc2007_version import import_version_problem
from qsnmc.data import Stimulus, TrainingData, TrainingStimulus
from qsnmc.scoring.metrics import intrinsic_reliability

FORMAT = "qsnmc-challenge/1"
MANIFEST = "manifest.json"
PUBLIC = "public.npz"
HIDDEN = "hidden.npz"


class ChallengeError(RuntimeError):
    """A challenge folder that is missing, corrupt or inconsistent."""


@dataclass(eq=False)
class ChallengeStimulus:
    """One stimulus as the scoring process holds it (hidden parts included).

    Attributes:
        name: stimulus name (letters, digits, ``-``, ``_``).
        dt_s: sampling step (s).
        current_pA: injected current over the whole protocol, shape ``(n_samples,)``.
        n_repetitions: number of recorded repetitions.
        train_window_s: training window ``(start, stop)`` in s, or None for a test-only stimulus.
        train_voltage_mV: ``(n_repetitions, n_window_samples)`` recorded voltage in the
            training window (or None).
        train_spikes_s: recorded spike times (s) per repetition in the training window (or None).
        test_window_s: test window (s), or None for a training-only stimulus.
        test_spikes_s: recorded spike times (s) per repetition in the test window: hidden.
    """

    name: str
    dt_s: float
    current_pA: np.ndarray
    n_repetitions: int
    train_window_s: tuple[float, float] | None = None
    train_voltage_mV: np.ndarray | None = None
    train_spikes_s: list[np.ndarray] | None = None
    test_window_s: tuple[float, float] | None = None
    test_spikes_s: list[np.ndarray] | None = None

    @property
    def duration_s(self) -> float:
        return self.current_pA.shape[0] * self.dt_s

    def check(self) -> None:
        """Raise :class:`ChallengeError` if the arrays and windows disagree."""
        where = f"stimulus {self.name!r}"
        if self.current_pA.ndim != 1 or not np.all(np.isfinite(self.current_pA)):
            raise ChallengeError(f"{where}: current must be a finite 1-D array")
        for label, win in (("training", self.train_window_s), ("test", self.test_window_s)):
            if win is not None and not (0 <= win[0] < win[1] <= self.duration_s + 1e-9):
                raise ChallengeError(f"{where}: {label} window {win} s outside the protocol 0-{self.duration_s:g} s")
        if self.train_window_s is not None:
            v = self.train_voltage_mV
            n_win = int(round((self.train_window_s[1] - self.train_window_s[0]) / self.dt_s))
            if v is None or v.shape != (self.n_repetitions, n_win):
                raise ChallengeError(
                    f"{where}: training voltage has shape {None if v is None else v.shape}, "
                    f"expected ({self.n_repetitions}, {n_win})"
                )
            _check_trains(where + " training", self.train_spikes_s, self.n_repetitions, self.train_window_s)
        if self.test_window_s is not None:
            _check_trains(where + " test", self.test_spikes_s, self.n_repetitions, self.test_window_s)


def _check_trains(where: str, trains: Sequence[np.ndarray] | None, n: int, win: tuple[float, float]) -> None:
    if trains is None or len(trains) != n:
        raise ChallengeError(f"{where}: expected {n} spike trains, got {None if trains is None else len(trains)}")
    for i, t in enumerate(trains):
        if t.size and (np.any(np.diff(t) < 0) or t[0] < win[0] - 1e-9 or t[-1] > win[1] + 1e-9):
            raise ChallengeError(f"{where}: repetition {i} spike times unsorted or outside {win} s")


@dataclass(eq=False)
class Challenge:
    """A whole challenge, as only the scoring process holds it."""

    name: str
    stimuli: list[ChallengeStimulus]
    delta_s: float = 0.004
    threshold_mV: float = 0.0
    description: str = ""
    path: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    # -- what models receive ---------------------------------------------------------
    def training_data(self) -> TrainingData:
        """The public training data: training windows only, no test-window data."""
        stims = [
            TrainingStimulus(
                s.name, s.dt_s, s.current_pA, s.train_window_s, s.train_voltage_mV, tuple(s.train_spikes_s)
            )
            for s in self.stimuli
            if s.train_window_s is not None
        ]
        return TrainingData(self.name, tuple(stims), self.delta_s)

    def test_stimuli(self) -> list[Stimulus]:
        """The stimuli to predict: current and window, no recorded response."""
        return [
            Stimulus(s.name, s.dt_s, s.current_pA, s.test_window_s, s.n_repetitions)
            for s in self.stimuli
            if s.test_window_s is not None
        ]

    # -- what the scorer uses ----------------------------------------------------------
    def test_recordings(self, name: str) -> list[np.ndarray]:
        for s in self.stimuli:
            if s.name == name and s.test_spikes_s is not None:
                return s.test_spikes_s
        raise KeyError(name)

    def reliability(self, name: str) -> float:
        """Intrinsic reliability R of a test stimulus' recordings (from the manifest, else computed)."""
        cached = self.manifest.get("reliability", {}).get(name)
        if cached is not None:
            return float(cached)
        s = next(s for s in self.stimuli if s.name == name)
        win = s.test_window_s
        return intrinsic_reliability(s.test_spikes_s, self.delta_s, duration=win[1] - win[0])

    def training_only_reasons(self) -> dict[str, str]:
        """Why each training-only stimulus is not tested, as its importer recorded it (e.g. its R under the floor)."""
        recorded = self.manifest.get("provenance", {}).get("stimuli", {})
        return {s.name: str(recorded.get(s.name, {}).get("test_excluded", "training only"))
                for s in self.stimuli if s.test_window_s is None and s.train_window_s is not None
                and isinstance(recorded, dict) and recorded.get(s.name, {}).get("test_excluded")}

    def source(self) -> dict[str, str | None]:
        """Where the challenge came from, from its manifest: ``{"file": path or name, "sha256": digest or None}``.

        An imported file names the file and its sha256. A source of several files (the 2009
        importer's two files, the 2007 importer's folder) gets one digest over them all:
        :func:`files_digest` of each file's sha256, in sorted path order. The embedded
        challenge names its generator (no digest); a folder imported before qsnmc recorded
        its digest has none either.
        """
        prov = self.manifest.get("provenance") or {}
        if prov.get("source_file"):
            return {"file": str(prov["source_file"]), "sha256": prov.get("source_sha256")}
        if isinstance(prov.get("source_files"), dict) and prov["source_files"]:
            files = prov["source_files"]
            digest = next(iter(files.values())) if len(files) == 1 else files_digest(files)
            return {"file": ", ".join(sorted(files)), "sha256": digest}
        if prov.get("source_dir"):
            return {"file": str(prov["source_dir"]), "sha256": prov.get("source_sha256")}
        if prov.get("generator"):
            return {"file": f"{prov['generator']} (seed {prov.get('seed')})", "sha256": None}
        return {"file": None, "sha256": None}

    def fingerprint(self) -> str:
        """sha256 of the challenge's files (for caching)."""
        files = self.manifest.get("files", {})
        h = hashlib.sha256(self.name.encode())
        for fname in sorted(files):
            h.update(files[fname]["sha256"].encode())
        h.update(repr((self.delta_s, self.threshold_mV)).encode())
        return h.hexdigest()


# ---------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def files_digest(digests: Mapping[str, str]) -> str:
    """One sha256 for a source of several files: the digest of their ``sha256sum``-style listing,
    ``"<sha256>  <path>\\n"`` per file (paths relative to the source), in sorted path order."""
    listing = "".join(f"{digests[path]}  {path}\n" for path in sorted(digests))
    return hashlib.sha256(listing.encode()).hexdigest()


def _pack_trains(prefix: str, trains: Sequence[np.ndarray], out: dict[str, np.ndarray]) -> None:
    out[f"{prefix}_spikes_s"] = np.concatenate([np.asarray(t, np.float64) for t in trains]) if trains else np.zeros(0)
    out[f"{prefix}_spike_counts"] = np.array([len(t) for t in trains], dtype=np.int64)


def _unpack_trains(prefix: str, arrays: Any) -> list[np.ndarray]:
    flat = arrays[f"{prefix}_spikes_s"]
    counts = arrays[f"{prefix}_spike_counts"]
    return [np.asarray(t) for t in np.split(flat, np.cumsum(counts)[:-1])]


def write_challenge(
    folder: str | Path,
    challenge: Challenge,
    *,
    voltage_lsb_mV: float | None = None,
    provenance: dict[str, Any] | None = None,
    compute_reliability: bool = True,
) -> Path:
    """Write a challenge folder atomically (a temporary folder renamed into place).

    Args:
        folder: destination; replaced if it exists.
        challenge: the challenge to write.
        voltage_lsb_mV: store training voltage as int16 counts of this size (mV), like an
            ADC, to keep files small; None stores float32.
        provenance: free-form dict saved in the manifest (source, generator, seed...).
        compute_reliability: compute and store R of each test stimulus.
    """
    folder = Path(folder)
    for s in challenge.stimuli:
        s.check()
    public: dict[str, np.ndarray] = {}
    hidden: dict[str, np.ndarray] = {}
    stim_meta = []
    reliability = {}
    for s in challenge.stimuli:
        p = s.name
        public[f"{p}.current_pA"] = np.asarray(s.current_pA, np.float32)
        if s.train_window_s is not None:
            _pack_voltage(s, voltage_lsb_mV, public)
            _pack_trains(f"{p}.train", s.train_spikes_s, public)
        if s.test_window_s is not None:
            _pack_trains(f"{p}.test", s.test_spikes_s, hidden)
            if compute_reliability and s.n_repetitions >= 2:
                win = s.test_window_s
                reliability[p] = intrinsic_reliability(s.test_spikes_s, challenge.delta_s, duration=win[1] - win[0])
        stim_meta.append(_stimulus_meta(s))
    dts = {s.dt_s for s in challenge.stimuli}
    if len(dts) != 1:
        raise ChallengeError(f"all stimuli must share one sampling step, got {sorted(dts)}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a challenge folder is ordinary data
    try:
        np.savez_compressed(tmp / PUBLIC, **public)
        np.savez_compressed(tmp / HIDDEN, **hidden)
        manifest = {
            "format": FORMAT,
            "name": challenge.name,
            "description": challenge.description,
            "delta_s": challenge.delta_s,
            "threshold_mV": challenge.threshold_mV,
            "dt_s": dts.pop(),
            "units": {"time": "s", "current": "pA", "voltage": "mV"},
            "stimuli": stim_meta,
            "reliability": reliability,
            "files": {
                f: {"sha256": sha256_file(tmp / f), "bytes": (tmp / f).stat().st_size} for f in (PUBLIC, HIDDEN)
            },
            "provenance": provenance or {},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        _replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _pack_voltage(s: ChallengeStimulus, voltage_lsb_mV: float | None, public: dict[str, np.ndarray]) -> None:
    """Put a stimulus' training voltage into ``public``: int16 counts of ``voltage_lsb_mV`` (mV), or float32 mV."""
    p = s.name
    if voltage_lsb_mV:
        counts = np.round(np.asarray(s.train_voltage_mV) / voltage_lsb_mV)
        if np.abs(counts).max() > 32767:
            raise ChallengeError(f"stimulus {p!r}: voltage exceeds int16 range at {voltage_lsb_mV} mV/count")
        public[f"{p}.voltage_counts"] = counts.astype(np.int16)
        public[f"{p}.voltage_lsb_mV"] = np.array(voltage_lsb_mV)
    else:
        public[f"{p}.voltage_mV"] = np.asarray(s.train_voltage_mV, np.float32)


def _stimulus_meta(s: ChallengeStimulus) -> dict[str, Any]:
    """A stimulus' manifest entry: name, repetitions, samples, windows (s) and spike counts."""
    return {
        "name": s.name,
        "n_repetitions": s.n_repetitions,
        "n_samples": int(s.current_pA.shape[0]),
        "train_window_s": list(s.train_window_s) if s.train_window_s else None,
        "test_window_s": list(s.test_window_s) if s.test_window_s else None,
        "train_spike_counts": [len(t) for t in s.train_spikes_s] if s.train_spikes_s else None,
        "test_spike_counts": [len(t) for t in s.test_spikes_s] if s.test_spikes_s else None,
    }


def _replace_folder(tmp: Path, folder: Path) -> None:
    """Rename the written folder ``tmp`` to ``folder``, replacing (then deleting) the old one if there is one."""
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)


def load_challenge(folder: str | Path, *, verify: bool = True) -> Challenge:
    """Load a challenge folder, checking its manifest and sha256 checksums.

    Raises:
        ChallengeError: naming the file and what is wrong with it.
    """
    folder = Path(folder)
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise ChallengeError(f"{mpath}: missing (not a qsnmc challenge folder)")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise ChallengeError(f"{mpath}: unreadable manifest: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise ChallengeError(f"{mpath}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    problem = import_version_problem(manifest)  # an older 2007 import (tested on model-made spikes) is refused
    if problem is not None:
        raise ChallengeError(f"{mpath}: {problem}")
    for fname, meta in manifest.get("files", {}).items():
        fpath = folder / fname
        if not fpath.is_file():
            raise ChallengeError(f"{fpath}: missing (listed in {MANIFEST})")
        if verify:
            digest = sha256_file(fpath)
            if digest != meta["sha256"]:
                raise ChallengeError(
                    f"{fpath}: sha256 {digest[:16]}... does not match the manifest's {meta['sha256'][:16]}...: "
                    "the file is corrupt or was changed; restore it (git checkout) or regenerate the challenge"
                )
    try:
        pub = np.load(folder / PUBLIC, allow_pickle=False)
        hid = np.load(folder / HIDDEN, allow_pickle=False)
        dt = float(manifest["dt_s"])
        stimuli = []
        for meta in manifest["stimuli"]:
            p = meta["name"]
            tw = tuple(meta["train_window_s"]) if meta.get("train_window_s") else None
            sw = tuple(meta["test_window_s"]) if meta.get("test_window_s") else None
            volt = trains = None
            if tw is not None:
                if f"{p}.voltage_counts" in pub:
                    volt = pub[f"{p}.voltage_counts"].astype(np.float64) * float(pub[f"{p}.voltage_lsb_mV"])
                else:
                    volt = pub[f"{p}.voltage_mV"].astype(np.float64)
                trains = _unpack_trains(f"{p}.train", pub)
            s = ChallengeStimulus(
                name=p,
                dt_s=dt,
                current_pA=pub[f"{p}.current_pA"].astype(np.float64),
                n_repetitions=int(meta["n_repetitions"]),
                train_window_s=tw,
                train_voltage_mV=volt,
                train_spikes_s=trains,
                test_window_s=sw,
                test_spikes_s=_unpack_trains(f"{p}.test", hid) if sw is not None else None,
            )
            s.check()
            stimuli.append(s)
    except ChallengeError as exc:
        raise ChallengeError(f"{folder}: {exc}") from exc
    except (KeyError, ValueError, OSError) as exc:
        raise ChallengeError(f"{folder}: inconsistent with its manifest: {exc!r}") from exc
    return Challenge(
        name=manifest["name"],
        stimuli=stimuli,
        delta_s=float(manifest.get("delta_s", 0.004)),
        threshold_mV=float(manifest.get("threshold_mV", 0.0)),
        description=manifest.get("description", ""),
        path=folder,
        manifest=manifest,
    )
