"""The run folder and the prediction cache: every result written atomically, as soon as it exists.

Layout::

    runs/<YYYYmmdd-HHMMSS>/run.json            challenge, settings, versions, start time
    runs/<YYYYmmdd-HHMMSS>/<model>/record.json  scores, timings, seed, source hash, fit record, errors
    runs/<YYYYmmdd-HHMMSS>/<model>/prediction.npz
    runs/<YYYYmmdd-HHMMSS>/<model>/worker.log
    runs/<YYYYmmdd-HHMMSS>/<model>/seed-<k>/...  the same three files per seed, in a run of several seeds
    runs/<YYYYmmdd-HHMMSS>/<cell>/...           a suite run (:mod:`qsnmc.harness.suite`): one run folder per challenge
    runs/LATEST                                 name of the newest run folder
    runs/cache/<key>/{prediction.npz,result.json}
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

LATEST = "LATEST"
CACHE = "cache"
RECORD = "record.json"
RUN = "run.json"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return repr(x)


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape a result."""
    out = {"python": platform.python_version()}
    for pkg in ("qsnmc", "numpy", "scipy", "torch", "brian2", "pluggy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = ""
    return out


def challenge_fields(challenge: Any) -> dict[str, Any]:
    """What ``run.json`` says of its challenge (a :class:`~qsnmc.challenges.store.Challenge`): name,
    path and source, Δ (s), stimuli, R per test stimulus and the training-only stimuli's reasons."""
    return {
        "challenge": challenge.name,
        "challenge_path": str(challenge.path) if challenge.path else None,
        "challenge_source": challenge.source(),
        "delta_s": challenge.delta_s,
        "stimuli": challenge.manifest.get("stimuli", []),
        "reliability": {s.name: challenge.reliability(s.name) for s in challenge.test_stimuli()},
        "training_only": challenge.training_only_reasons(),
    }


def new_run_dir(runs_dir: Path) -> Path:
    """Create ``runs_dir/<timestamp>`` (a suffix keeps two runs in one second apart)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = runs_dir / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run folder in {runs_dir}")


def mark_latest(run_dir: Path) -> None:
    tmp = run_dir.parent / f".{LATEST}.tmp"
    tmp.write_text(run_dir.name + "\n")
    os.replace(tmp, run_dir.parent / LATEST)


def find_run(runs_dir: Path, run: str | None = None) -> Path:
    """The run folder named ``run`` (a path or a folder name), else the latest run.

    Raises:
        FileNotFoundError: with a message saying what is missing.
    """
    if run:
        path = Path(run) if Path(run).is_dir() else runs_dir / run
        if not (path / RUN).is_file():
            raise FileNotFoundError(f"{path}: no qsnmc run there (no {RUN})")
        return path
    marker = runs_dir / LATEST
    if not marker.is_file():
        raise FileNotFoundError(f"no run yet in {runs_dir}: run `qsnmc run --all` first")
    return runs_dir / marker.read_text().strip()


def seed_folder(run_dir: Path, label: str, seed: int | None, several_seeds: bool) -> Path:
    """A job's folder: ``<label>/`` in a single-seed run, ``<label>/seed-<k>/`` in a run of several seeds."""
    return run_dir / label / f"seed-{seed}" if several_seeds else run_dir / label


def record_dir(run_dir: Path, record: dict[str, Any]) -> Path:
    """The folder a loaded record came from (its prediction and log lie beside it)."""
    per_seed = run_dir / record["model"] / f"seed-{record.get('seed')}"
    return per_seed if (per_seed / RECORD).is_file() else run_dir / record["model"]


def load_records(run_dir: Path) -> list[dict[str, Any]]:
    """Every job record of a run, single- or several-seed (jobs still running have none yet)."""
    records = []
    for path in sorted([*run_dir.glob(f"*/{RECORD}"), *run_dir.glob(f"*/seed-*/{RECORD}")]):
        try:
            records.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return records


def cache_get(runs_dir: Path, key: str) -> Path | None:
    path = runs_dir / CACHE / key
    return path if (path / "prediction.npz").is_file() and (path / "result.json").is_file() else None


def cache_put(runs_dir: Path, key: str, files: dict[str, Path]) -> None:
    """Store files under the cache key atomically (a temporary folder renamed into place)."""
    final = runs_dir / CACHE / key
    if final.exists():
        return
    tmp = runs_dir / CACHE / f".{key}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, src in files.items():
        shutil.copy2(src, tmp / name)
    try:
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
