"""Running models over a suite of challenges (cells) into one suite folder.

Layout (each cell's folder is an ordinary run folder, readable by ``qsnmc table`` and
``qsnmc report`` on its own)::

    runs/<YYYYmmdd-HHMMSS>/run.json              the suite: name, cells, settings, versions, start time
    runs/<YYYYmmdd-HHMMSS>/<cell>/run.json       that cell's run (challenge, windows, R, settings)
    runs/<YYYYmmdd-HHMMSS>/<cell>/<model>/...    its records, as in a single-challenge run

Each (model, cell, seed) is one job and one cache entry (the cache key holds the challenge's
fingerprint), so a cell already computed is reused by the next suite run. Every job of every
cell goes into one pool on one executor (local subprocesses, ``jobs`` at a time, or one Dask
cluster), longest first over the whole suite, each cell's public input shipped once. A model
that fails on a cell is that cell's failed row; the suite goes on, and every record is written
as soon as it exists.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from qsnmc.challenges.store import Challenge
from qsnmc.harness.executors import make_executor
from qsnmc.harness.runner import Runner, RunSettings, Task, run_jobs
from qsnmc.harness.runstore import RUN, load_records, mark_latest, new_run_dir, package_versions, write_json_atomic

#: the key of a suite folder's ``run.json`` that says it is a suite
SUITE = "suite"


@dataclass
class SuiteResult:
    """A finished suite run: its folder and each cell's job records, by cell name in the suite's order."""

    run_dir: Path
    records: dict[str, list[dict[str, Any]]]


def run_suite(challenges: list[Challenge], runs_dir: Path, settings: RunSettings, tasks: list[Task], *,
              name: str = "", on_done: Callable[[dict[str, Any]], None] | None = None,
              on_start: Callable[[Path], None] | None = None) -> SuiteResult:
    """Run every task on every challenge (once per seed of ``settings``) into a new suite folder.

    Args:
        challenges: the cells, in the suite's order (distinct names).
        name: the suite's name (``--suite``), "" for a list of challenges.
        on_done: called with each job's record as it is written.
        on_start: called with the suite folder once it exists (before any job).
    """
    names = [c.name for c in challenges]
    if len(set(names)) != len(names):
        raise ValueError(f"a suite names a challenge twice: {names}")
    runs_dir = Path(runs_dir).resolve()
    run_dir = new_run_dir(runs_dir)
    write_json_atomic(run_dir / RUN, {
        SUITE: {"name": name, "challenges": names},
        "challenge": ",".join(names),
        "settings": asdict(settings),
        "versions": package_versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    mark_latest(run_dir)
    if on_start:
        on_start(run_dir)
    runners: list[Runner] = []
    executor = make_executor(settings.executor, jobs=settings.jobs, scheduler=settings.scheduler)
    try:
        for challenge in challenges:
            runners.append(Runner(challenge, runs_dir, settings, executor=executor, run_dir=run_dir / challenge.name,
                                  extra_info={"in_suite": run_dir.name}))
        jobs = [(runner, task) for runner in runners for task in runner.jobs(tasks)]
        for runner in runners:
            runner.attach(executor, len(jobs))
        done = run_jobs(jobs, executor, settings.budget, on_done)
    finally:
        executor.close()
        for runner in runners:
            runner.discard_input()
    records = {c.name: [r for (runner, _), r in zip(jobs, done) if runner.challenge is c] for c in challenges}
    return SuiteResult(run_dir, records)


def suite_info(run_dir: Path) -> dict[str, Any] | None:
    """The ``suite`` entry of a run folder's ``run.json`` (name, challenges), None for a single-challenge run."""
    info = json.loads((Path(run_dir) / RUN).read_text())
    return info.get(SUITE)


def load_suite_records(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Each cell's job records of a suite folder, by cell in the suite's order (a cell not started yet: none)."""
    cells = (suite_info(run_dir) or {}).get("challenges", [])
    return {c: load_records(Path(run_dir) / c) if (Path(run_dir) / c / RUN).is_file() else [] for c in cells}
