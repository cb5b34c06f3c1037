"""Fitting, predicting and scoring every model, each in its own isolated worker.

The scoring process (this one) holds the challenge, hidden test included. For each
model it writes the *public* training data and the test stimuli (current and window
only) into a job folder, starts a sandboxed worker (:mod:`qsnmc.harness.worker`) under a
time and memory limit, reads back the predicted spike times, checks and scores
them, and writes the model's record at once. Any failure becomes that model's
failed row; the run goes on.

Where the worker runs is the executor's business (:mod:`qsnmc.harness.executors`): subprocesses
of this machine, ``jobs`` at a time, or tasks on a ``dask.distributed`` cluster. Either
way only the public input travels, and scoring happens here.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from qsnmc.challenges.store import Challenge
from qsnmc.harness.discovery import ModelEntry
from qsnmc.scoring.evaluation import score_predictions
from qsnmc.harness.executors import DaskExecutor, Job, LocalExecutor, make_executor
from qsnmc.harness.numerics import numerics_info
from qsnmc.harness.plugins import source_hash
from qsnmc.harness.supervise import describe_exit
from qsnmc.harness.runstore import (
    RECORD,
    RUN,
    challenge_fields,
    cache_get,
    cache_put,
    mark_latest,
    new_run_dir,
    package_versions,
    seed_folder,
    write_json_atomic,
)
from qsnmc.scoring.metrics import InvalidPrediction
from qsnmc.harness.worker import INPUT, PREDICTION, RESULT


@dataclass
class RunSettings:
    """Settings of one ``qsnmc run``.

    Attributes:
        seed: passed to every model (the run's one seed when ``seeds`` is empty).
        seeds: several seeds: every model is fitted once per seed, each (model, seed) its own
            job and cache entry, recorded under ``<model>/seed-<k>/``; empty: the one ``seed``.
        budget: compute scale passed to every model (1.0 = each model's default fit).
        timeout_s: wall-clock limit per model, fit and prediction together (s).
        memory_limit_MB: resident-memory limit per model (MB).
        use_cache: reuse the prediction of an unchanged model on unchanged data.
        jobs: how many models run at once (local executor; LocalCluster workers for dask).
        echo: show the workers' output (progress bars) on stderr.
        executor: ``"local"`` (subprocesses here) or ``"dask"`` (a dask.distributed cluster).
        scheduler: the Dask scheduler's address (``tcp://HOST:PORT``); None starts a LocalCluster.
        threads: BLAS / OpenMP / torch threads each model's worker may use; with a fixed count a
            model's result does not depend on the machine's cores or on ``jobs``.
    """

    seed: int = 0
    seeds: tuple[int, ...] = ()
    budget: float = 1.0
    timeout_s: float = 1800.0
    memory_limit_MB: float = 8000.0
    use_cache: bool = True
    jobs: int = 1
    echo: bool = False
    executor: str = "local"
    scheduler: str | None = None
    threads: int = 1

    @property
    def seed_list(self) -> tuple[int, ...]:
        """Every seed of the run, in order (``(seed,)`` for a single-seed run)."""
        return tuple(self.seeds) or (self.seed,)

    @property
    def several_seeds(self) -> bool:
        """Whether models are fitted with more than one seed (the ``<model>/seed-<k>/`` layout)."""
        return len(self.seed_list) > 1


@dataclass
class Task:
    """One row of a run: a model with optional keyword settings for its factory.

    Attributes:
        entry: the model.
        params: keyword settings passed to the model's factory (e.g. one point of its ``param_grid``).
        label: the row's name and folder name (default: the model's name).
        seed: the seed of this job (None: every seed of the run, one job each).
    """

    entry: ModelEntry
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    seed: int | None = None

    def __post_init__(self) -> None:
        self.label = self.label or self.entry.name


def longest_first(tasks: list[Task], budget: float) -> list[int]:
    """The order to start ``tasks`` in (indices): by the model's ``typical_fit_s`` times ``budget``,
    longest first, unknown durations before every known one, ties in the given order. With more
    jobs than workers this keeps the run from ending on one long job while the other workers idle
    (the longest-processing-time rule); each job's result does not depend on the order."""
    def cost(i: int) -> float:
        typical = tasks[i].entry.typical_fit_s
        return float("inf") if typical is None else typical * budget

    return sorted(range(len(tasks)), key=lambda i: -cost(i))


def cache_key(entry: ModelEntry, challenge: Challenge, settings: RunSettings, params: dict | None = None,
              seed: int | None = None) -> str:
    """Same plugin code, qsnmc code, model, challenge files, seed, budget and settings -> same key.

    ``seed`` is the job's (default: ``settings.seed``); the key does not depend on the run's
    other seeds, so each (model, seed) is cached on its own.
    """
    seed = settings.seed if seed is None else seed
    parts = [source_hash(entry.source), entry.name, challenge.fingerprint(), str(seed), repr(settings.budget),
             f"threads={settings.threads}"]
    if params:
        parts.append(json.dumps(params, sort_keys=True))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def load_prediction(path: Path) -> dict[str, list[np.ndarray]]:
    """Predicted trains by stimulus, from a worker's npz (no pickles accepted)."""
    out: dict[str, list[tuple[int, np.ndarray]]] = {}
    with np.load(path, allow_pickle=False) as z:
        for key in z.files:
            stim, _, idx = key.rpartition("/")
            out.setdefault(stim, []).append((int(idx), np.asarray(z[key], dtype=np.float64)))
    return {k: [t for _, t in sorted(v, key=lambda p: p[0])] for k, v in out.items()}


def _base_record(task: Task, challenge: Challenge, settings: RunSettings) -> dict[str, Any]:
    entry = task.entry
    record = {
        "model": task.label,
        "description": entry.description,
        "source": entry.source.label,
        "version": entry.version,
        "challenge": challenge.name,
        "challenge_source": challenge.source(),
        "seed": settings.seed if task.seed is None else task.seed,
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
        "executor": settings.executor,
        "threads": settings.threads,
    }
    if task.params or task.label != entry.name:
        record.update(base_model=entry.name, params=dict(task.params))
    return record


class Runner:
    """Runs models on one challenge into one run folder."""

    def __init__(self, challenge: Challenge, runs_dir: Path, settings: RunSettings, *,
                 executor: LocalExecutor | DaskExecutor | None = None, extra_info: dict | None = None,
                 run_dir: Path | None = None) -> None:
        """Create the run folder and write the public input once.

        Args:
            executor: where workers run; default: the one ``settings`` names (created here
                and closed by :meth:`run`); one passed in is left open.
            extra_info: more keys for ``run.json`` (a sweep describes itself there).
            run_dir: the run folder to create (it must not exist yet; a suite's cell folder),
                not marked as the latest run; default: a new ``runs_dir/<timestamp>``, marked latest.
                The prediction cache is ``runs_dir/cache`` either way.
        """
        self.challenge = challenge
        self.runs_dir = Path(runs_dir).resolve()
        self.settings = settings
        self._given_executor = executor
        if run_dir is not None:
            self.run_dir = Path(run_dir).resolve()
            self.run_dir.mkdir(parents=True)
        else:
            self.run_dir = new_run_dir(self.runs_dir)
        self._input_dir = self.run_dir / ".input"
        self._input_dir.mkdir()
        with open(self._input_dir / INPUT, "wb") as f:
            pickle.dump((challenge.training_data(), challenge.test_stimuli()), f, protocol=pickle.HIGHEST_PROTOCOL)
        write_json_atomic(
            self.run_dir / RUN,
            {
                **challenge_fields(challenge),
                "settings": asdict(settings),
                "versions": package_versions(),
                "numerics": numerics_info(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **(extra_info or {}),
            },
        )
        if run_dir is None:
            mark_latest(self.run_dir)

    def jobs(self, entries: list[ModelEntry | Task]) -> list[Task]:
        """The run's jobs: every entry once per seed of the run (entry by entry, seeds in order)."""
        rows = [e if isinstance(e, Task) else Task(e) for e in entries]
        labels = [t.label for t in rows]
        if len(set(labels)) != len(labels):
            raise ValueError(f"two rows of one run share a name: {sorted(labels)}")
        return [t if t.seed is not None else replace(t, seed=s) for t in rows
                for s in ((t.seed,) if t.seed is not None else self.settings.seed_list)]

    def attach(self, executor: LocalExecutor | DaskExecutor, n_jobs: int) -> None:
        """Run this challenge's jobs on ``executor``, its public input shipped there once;
        ``n_jobs``: every job the executor will run (several runners may share it)."""
        self.executor = executor
        self._input_handle = executor.prepare(self._input_dir / INPUT, n_jobs)

    def discard_input(self) -> None:
        """Remove the public input written for the workers (after the last job)."""
        shutil.rmtree(self._input_dir, ignore_errors=True)

    def run(self, entries: list[ModelEntry | Task], on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict]:
        """Run every entry once per seed of the run through the executor; return their records
        in the given order (entry by entry, each entry's seeds in the run's order)."""
        tasks = self.jobs(entries)
        executor = self._given_executor
        try:
            if executor is None:
                executor = make_executor(self.settings.executor, jobs=self.settings.jobs,
                                         scheduler=self.settings.scheduler)
            self.attach(executor, len(tasks))
            return run_jobs([(self, t) for t in tasks], executor, self.settings.budget, on_done)
        finally:
            if executor is not None and self._given_executor is None:
                executor.close()
            self.discard_input()

    def _run_one_safely(self, task: Task, on_done: Callable | None) -> dict[str, Any]:
        record = _base_record(task, self.challenge, self.settings)
        try:
            record = self._run_one(task, record)
        except Exception as exc:  # noqa: BLE001 - a harness-side surprise still becomes a row
            record.update(status="failed", reason=f"harness error: {type(exc).__name__}: {exc}")
        write_json_atomic(self.folder(task) / RECORD, record)
        if on_done:
            on_done(record)
        return record

    def _run_one(self, task: Task, record: dict[str, Any]) -> dict[str, Any]:
        entry = task.entry
        model_dir = self.folder(task)
        model_dir.mkdir(parents=True, exist_ok=True)
        if entry.error:
            record.update(stage="load", reason=entry.error)
            return record
        key = cache_key(entry, self.challenge, self.settings, task.params, task.seed)
        record["source_sha256"] = source_hash(entry.source)
        record["cache_key"] = key
        hit = cache_get(self.runs_dir, key) if self.settings.use_cache else None
        if hit is not None:
            result = json.loads((hit / RESULT).read_text())
            shutil.copy2(hit / PREDICTION, model_dir / PREDICTION)
            record.update(cached=True, sandboxed=result.get("sandboxed"))
        else:
            result = self._execute(task, model_dir, record)
            if result is None:
                return record
        record.update(
            stage=result.get("stage", ""),
            fit_s=result.get("fit_s"),
            predict_s=result.get("predict_s"),
            fit_record=result.get("record", {}),
            numerics=result.get("numerics"),
        )
        if result.get("status") != "ok":
            record["reason"] = f"{result.get('stage')}: {result.get('error')}"
            record["traceback"] = result.get("traceback", "")
            return record
        try:
            predictions = load_prediction(model_dir / PREDICTION)
            score = score_predictions(self.challenge, predictions)
        except (InvalidPrediction, ValueError, OSError) as exc:
            record.update(stage="score", reason=f"invalid prediction: {exc}")
            return record
        record.update(status="ok", stage="scored", gamma=score.gamma, performance=score.performance, error=score.error,
                      scores=score.to_dict()["stimuli"])
        if not record["cached"] and self.settings.use_cache:
            cache_put(self.runs_dir, key, {PREDICTION: model_dir / PREDICTION, RESULT: model_dir / RESULT})
        return record

    def folder(self, task: Task) -> Path:
        """Where a job's record goes: ``<label>/``, or ``<label>/seed-<k>/`` in a run of several seeds."""
        return seed_folder(self.run_dir, task.label, task.seed, self.settings.several_seeds)

    def _protected(self) -> list[Path]:
        """Folders no worker may see: the run folders and the challenge's own folder."""
        paths = [self.runs_dir]
        if self.challenge.path is not None:
            paths.append(Path(self.challenge.path).resolve())
        return paths

    def _execute(self, task: Task, model_dir: Path, record: dict[str, Any]) -> dict[str, Any] | None:
        """Run the worker through the executor; return its result, or None after recording why it gave none."""
        src = task.entry.source
        job = Job(
            source=src.to_dict(), model=task.entry.name, seed=task.seed, budget=self.settings.budget,
            params=dict(task.params), timeout_s=self.settings.timeout_s,
            memory_limit_MB=self.settings.memory_limit_MB, protected=tuple(str(p) for p in self._protected()),
            echo=self.settings.echo, threads=self.settings.threads,
            submission_code=Path(src.target).read_text() if src.kind == "submission" and self.executor.kind != "local" else None,
        )
        outcome = self.executor.execute(job, model_dir, self._input_handle)
        record.update(sandboxed=outcome.sandboxed, wall_s=outcome.wall_s, peak_rss_MB=outcome.peak_rss_MB)
        if outcome.log_dropped_bytes:
            record["log_dropped_bytes"] = outcome.log_dropped_bytes
        if self.executor.kind != "local":
            record["host"] = outcome.host
        if outcome.reason == "timeout":
            record.update(stage="run", reason=f"timed out after {self.settings.timeout_s:g} s")
        elif outcome.reason == "memory":
            record.update(stage="run", reason=f"exceeded the memory limit of {self.settings.memory_limit_MB:g} MB")
        elif outcome.reason == "died":
            how = describe_exit(outcome.returncode, bool(outcome.sandboxed))
            record.update(stage="run", reason=f"worker died ({how}): {outcome.log[-400:]}")
        elif outcome.reason == "lost":
            record.update(stage="run", reason=f"lost: {outcome.detail}")
        if record["reason"]:
            record["log_tail"] = outcome.log
            return None
        result = dict(outcome.result or {})
        result["sandboxed"] = outcome.sandboxed
        write_json_atomic(model_dir / RESULT, result)
        if outcome.prediction is not None:
            tmp = model_dir / f".{PREDICTION}.tmp"
            tmp.write_bytes(outcome.prediction)
            os.replace(tmp, model_dir / PREDICTION)
        return result


def run_jobs(jobs: list[tuple[Runner, Task]], executor: LocalExecutor | DaskExecutor, budget: float,
             on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run jobs of one or several runners (each attached to ``executor``) in one pool, longest
    first over all of them; return their records in the given order."""
    order = longest_first([t for _, t in jobs], budget)
    with ThreadPoolExecutor(max_workers=executor.concurrency(len(jobs))) as pool:
        futures = {i: pool.submit(jobs[i][0]._run_one_safely, jobs[i][1], on_done) for i in order}
        return [futures[i].result() for i in range(len(jobs))]
