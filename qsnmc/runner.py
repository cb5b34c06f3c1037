"""Fitting, predicting and scoring every model, each in its own isolated worker.

The scoring process (this one) holds the challenge, hidden test included. For each
model it writes the *public* training data and the test stimuli (current and window
only) into a job folder, starts a sandboxed worker (:mod:`qsnmc.worker`) under a
time and memory limit, reads back the predicted spike times, checks and scores
them, and writes the model's record at once. Any failure becomes that model's
failed row; the run goes on.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from qsnmc import __version__
from qsnmc.challenge import Challenge
from qsnmc.discovery import ModelEntry
from qsnmc.evaluation import score_predictions
from qsnmc.plugins import source_hash
from qsnmc.runstore import (
    RECORD,
    RUN,
    cache_get,
    cache_put,
    mark_latest,
    new_run_dir,
    package_versions,
    write_json_atomic,
)
from qsnmc.sandbox import wrap
from qsnmc.scoring import InvalidPrediction
from qsnmc.supervise import run_supervised
from qsnmc.worker import INPUT, JOB, PREDICTION, RESULT


@dataclass
class RunSettings:
    """Settings of one ``qsnmc run``.

    Attributes:
        seed: passed to every model.
        budget: compute scale passed to every model (1.0 = each model's default fit).
        timeout_s: wall-clock limit per model, fit and prediction together (s).
        memory_limit_MB: resident-memory limit per model (MB).
        use_cache: reuse the prediction of an unchanged model on unchanged data.
        jobs: how many models run at once.
        echo: show the workers' output (progress bars) on stderr.
    """

    seed: int = 0
    budget: float = 1.0
    timeout_s: float = 1800.0
    memory_limit_MB: float = 8000.0
    use_cache: bool = True
    jobs: int = 1
    echo: bool = False


def cache_key(entry: ModelEntry, challenge: Challenge, settings: RunSettings) -> str:
    """Same plugin code, qsnmc code, model, challenge files, seed and budget -> same key."""
    parts = [source_hash(entry.source), entry.name, challenge.fingerprint(), str(settings.seed), repr(settings.budget)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _load_prediction(path: Path) -> dict[str, list[np.ndarray]]:
    """Predicted trains by stimulus, from a worker's npz (no pickles accepted)."""
    out: dict[str, list[tuple[int, np.ndarray]]] = {}
    with np.load(path, allow_pickle=False) as z:
        for key in z.files:
            stim, _, idx = key.rpartition("/")
            out.setdefault(stim, []).append((int(idx), np.asarray(z[key], dtype=np.float64)))
    return {k: [t for _, t in sorted(v, key=lambda p: p[0])] for k, v in out.items()}


def _base_record(entry: ModelEntry, challenge: Challenge, settings: RunSettings) -> dict[str, Any]:
    return {
        "model": entry.name,
        "description": entry.description,
        "source": entry.source.label,
        "version": entry.version,
        "challenge": challenge.name,
        "seed": settings.seed,
        "budget": settings.budget,
        "status": "failed",
        "reason": "",
        "stage": "",
        "gamma": None,
        "performance": None,
        "error": None,
        "fit_s": None,
        "predict_s": None,
        "cached": False,
        "sandboxed": None,
        "versions": package_versions(),
    }


class Runner:
    """Runs models on one challenge into one run folder."""

    def __init__(self, challenge: Challenge, runs_dir: Path, settings: RunSettings) -> None:
        self.challenge = challenge
        self.runs_dir = Path(runs_dir).resolve()
        self.settings = settings
        self.run_dir = new_run_dir(self.runs_dir)
        self._input_dir = self.run_dir / ".input"
        self._input_dir.mkdir()
        with open(self._input_dir / INPUT, "wb") as f:
            pickle.dump((challenge.training_data(), challenge.test_stimuli()), f, protocol=pickle.HIGHEST_PROTOCOL)
        write_json_atomic(
            self.run_dir / RUN,
            {
                "challenge": challenge.name,
                "challenge_path": str(challenge.path) if challenge.path else None,
                "delta_s": challenge.delta_s,
                "stimuli": challenge.manifest.get("stimuli", []),
                "reliability": {s.name: challenge.reliability(s.name) for s in challenge.test_stimuli()},
                "settings": asdict(settings),
                "versions": package_versions(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        mark_latest(self.run_dir)

    def run(self, entries: list[ModelEntry], on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict]:
        """Run every entry (``settings.jobs`` at a time); return their records in the given order."""
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.settings.jobs)) as pool:
                futures = [pool.submit(self._run_one_safely, e, on_done) for e in entries]
                return [f.result() for f in futures]
        finally:
            shutil.rmtree(self._input_dir, ignore_errors=True)

    def _run_one_safely(self, entry: ModelEntry, on_done: Callable | None) -> dict[str, Any]:
        record = _base_record(entry, self.challenge, self.settings)
        try:
            record = self._run_one(entry, record)
        except Exception as exc:  # noqa: BLE001 - a harness-side surprise still becomes a row
            record.update(status="failed", reason=f"harness error: {type(exc).__name__}: {exc}")
        model_dir = self.run_dir / entry.name
        write_json_atomic(model_dir / RECORD, record)
        if on_done:
            on_done(record)
        return record

    def _run_one(self, entry: ModelEntry, record: dict[str, Any]) -> dict[str, Any]:
        model_dir = self.run_dir / entry.name
        model_dir.mkdir(parents=True, exist_ok=True)
        if entry.error:
            record.update(stage="load", reason=entry.error)
            return record
        key = cache_key(entry, self.challenge, self.settings)
        record["source_sha256"] = source_hash(entry.source)
        record["cache_key"] = key
        hit = cache_get(self.runs_dir, key) if self.settings.use_cache else None
        if hit is not None:
            result = json.loads((hit / RESULT).read_text())
            shutil.copy2(hit / PREDICTION, model_dir / PREDICTION)
            record.update(cached=True, sandboxed=result.get("sandboxed"))
        else:
            result = self._execute(entry, model_dir, record)
            if result is None:
                return record
        record.update(
            stage=result.get("stage", ""),
            fit_s=result.get("fit_s"),
            predict_s=result.get("predict_s"),
            fit_record=result.get("record", {}),
        )
        if result.get("status") != "ok":
            record["reason"] = f"{result.get('stage')}: {result.get('error')}"
            record["traceback"] = result.get("traceback", "")
            return record
        try:
            predictions = _load_prediction(model_dir / PREDICTION)
            score = score_predictions(self.challenge, predictions)
        except (InvalidPrediction, ValueError, OSError) as exc:
            record.update(stage="score", reason=f"invalid prediction: {exc}")
            return record
        record.update(status="ok", stage="scored", gamma=score.gamma, performance=score.performance, error=score.error,
                      scores=score.to_dict()["stimuli"])
        if not record["cached"] and self.settings.use_cache:
            cache_put(self.runs_dir, key, {PREDICTION: model_dir / PREDICTION, RESULT: model_dir / RESULT})
        return record

    def _protected(self) -> list[Path]:
        """Folders no worker may see: the run folders and the challenge's own folder."""
        paths = [self.runs_dir]
        if self.challenge.path is not None:
            paths.append(Path(self.challenge.path).resolve())
        return paths

    def _execute(self, entry: ModelEntry, model_dir: Path, record: dict[str, Any]) -> dict[str, Any] | None:
        """Run the worker; return its result, or None after recording why it gave none."""
        job = model_dir / "job"
        shutil.rmtree(job, ignore_errors=True)
        job.mkdir()
        (job / JOB).write_text(
            json.dumps({"source": entry.source.to_dict(), "model": entry.name, "seed": self.settings.seed,
                        "budget": self.settings.budget})
        )
        (job / INPUT).symlink_to(self._input_dir / INPUT)
        cmd, env, sandboxed = wrap(
            [sys.executable, "-m", "qsnmc.worker", "run", str(job)],
            workdir=job,
            code_paths=entry.source.paths,
            read_only=[self._input_dir],
            protected=self._protected(),
        )
        env["QSNMC_PROGRESS"] = "1" if self.settings.echo else "0"
        record["sandboxed"] = sandboxed
        outcome = run_supervised(
            cmd, env=env, cwd=job, log_path=model_dir / "worker.log", timeout_s=self.settings.timeout_s,
            memory_limit_MB=self.settings.memory_limit_MB, echo=self.settings.echo,
        )
        record.update(wall_s=outcome.wall_s, peak_rss_MB=outcome.peak_rss_MB)
        result_path = job / RESULT
        if outcome.reason == "timeout":
            record.update(stage="run", reason=f"timed out after {self.settings.timeout_s:g} s")
        elif outcome.reason == "memory":
            record.update(stage="run", reason=f"exceeded the memory limit of {self.settings.memory_limit_MB:g} MB")
        elif not result_path.is_file():
            record.update(stage="run", reason=f"worker died (exit status {outcome.returncode}): {outcome.log_tail[-400:]}")
        if record["reason"]:
            record["log_tail"] = outcome.log_tail
            return None
        result = json.loads(result_path.read_text())
        result["sandboxed"] = sandboxed
        for name in (RESULT, PREDICTION):
            if (job / name).exists():
                shutil.move(str(job / name), model_dir / name)
        shutil.rmtree(job, ignore_errors=True)
        return result
