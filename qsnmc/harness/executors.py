"""Where a model's fit-and-predict job runs: here (local subprocesses) or on a Dask cluster.

A :class:`Job` is all a worker machine receives: the plugin's source spec (and, for a
submission file, its code), the model name, seed, budget and settings, and the *public*
input (training data and test stimuli, pickled). Either executor runs the same sandboxed
worker subprocess (``python -m qsnmc.harness.worker run JOBDIR`` under :func:`qsnmc.harness.sandbox.wrap`
and :func:`qsnmc.harness.supervise.run_supervised`) and hands back a :class:`JobOutcome`: the
worker's result JSON and prediction bytes. Scoring stays with the caller, the only
process that holds the hidden test window.

- :class:`LocalExecutor`: the worker runs on this machine; ``jobs`` of them at once.
- :class:`DaskExecutor`: each job is a task on a ``dask.distributed`` cluster (an existing
  scheduler, or a ``LocalCluster`` it starts). The input is scattered once; each task
  writes its job folder into a temporary folder on the worker machine. A task whose
  Dask worker dies, or that does not finish within its deadline, becomes a failed
  outcome (``reason`` "lost"), never a hung run. ``dask`` is imported only here, lazily.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qsnmc.harness.plugins import PluginSource, module_paths
from qsnmc.harness.sandbox import wrap
from qsnmc.harness.supervise import run_supervised, tail
from qsnmc.harness.worker import INPUT, JOB, PREDICTION, RESULT

#: seconds a Dask task may take beyond its model's own time limit (queueing, transfers)
DASK_GRACE_S = 60.0


@dataclass(frozen=True)
class Job:
    """One model's fit-and-predict, as shipped to wherever it runs (no hidden data).

    Attributes:
        source: the plugin's :class:`qsnmc.harness.plugins.PluginSource` as a dict.
        model: the model's name within that plugin.
        seed: passed to the model.
        budget: compute scale passed to the model (1.0 = its default fit).
        params: extra keyword settings passed to the model's factory (a sweep's setting).
        timeout_s: wall-clock limit, fit and prediction together (s).
        memory_limit_MB: resident-memory limit (MB).
        protected: folders the sandbox must keep invisible (challenge data, run folders).
        echo: copy the worker's output (progress bars) to stderr.
        submission_code: a submission file's source text, so a remote machine can run it.
        threads: BLAS / OpenMP / torch threads the worker may use (its environment says so).
    """

    source: dict[str, Any]
    model: str
    seed: int
    budget: float
    params: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = 1800.0
    memory_limit_MB: float = 8000.0
    protected: tuple[str, ...] = ()
    echo: bool = False
    submission_code: str | None = None
    threads: int = 1


#: environment variables that set the thread pools of OpenMP, the BLAS libraries and torch
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class JobOutcome:
    """What came back from a job.

    Attributes:
        reason: ``""`` when the worker wrote a result; else "timeout", "memory", "died"
            (the worker process exited without a result) or "lost" (the Dask task failed:
            its machine died or it missed its deadline).
        result: the worker's ``result.json`` (status, stage, fit_s, predict_s, record...).
        prediction: the bytes of its ``prediction.npz``, or None.
        returncode: the worker's exit status (None when unknown).
        wall_s: wall-clock time of the worker (s).
        peak_rss_MB: its largest resident memory (MB).
        log: the worker's output (its bounded log for remote runs; the tail for local ones).
        log_dropped_bytes: output the bounded log dropped (its first and last MB are kept).
        sandboxed: whether it ran under bubblewrap.
        host: where it ran (host name, or the Dask worker's address).
        detail: a sentence for "lost" outcomes.
    """

    reason: str = ""
    result: dict[str, Any] | None = None
    prediction: bytes | None = None
    returncode: int | None = None
    wall_s: float | None = None
    peak_rss_MB: float | None = None
    log: str = ""
    log_dropped_bytes: int = 0
    sandboxed: bool | None = None
    host: str = ""
    detail: str = ""


def run_job(job: Job, jobdir: Path, input_file: Path | None, input_bytes: bytes | None, log_path: Path) -> JobOutcome:
    """Run ``job`` in the sandboxed worker, in the (empty or new) folder ``jobdir``.

    The input is either a file to link (``input_file``, exposed read-only) or bytes
    written into the job folder (``input_bytes``).
    """
    jobdir.mkdir(parents=True, exist_ok=True)
    (jobdir / JOB).write_text(json.dumps({"source": job.source, "model": job.model, "seed": job.seed,
                                          "budget": job.budget, "params": job.params}))
    read_only: list[Path] = []
    if input_file is not None:
        (jobdir / INPUT).symlink_to(input_file)
        read_only.append(input_file.parent)
    else:
        (jobdir / INPUT).write_bytes(input_bytes or b"")
    cmd, env, sandboxed = wrap(
        [sys.executable, "-m", "qsnmc.harness.worker", "run", str(jobdir)],
        workdir=jobdir, code_paths=job.source.get("paths", ()), read_only=read_only, protected=job.protected,
    )
    env["QSNMC_PROGRESS"] = "1" if job.echo else "0"
    env.update({name: str(max(1, job.threads)) for name in THREAD_VARIABLES})
    out = run_supervised(cmd, env=env, cwd=jobdir, log_path=log_path, timeout_s=job.timeout_s,
                         memory_limit_MB=job.memory_limit_MB, echo=job.echo)
    outcome = JobOutcome(returncode=out.returncode, wall_s=out.wall_s, peak_rss_MB=out.peak_rss_MB,
                         log=out.log_tail, log_dropped_bytes=out.dropped_bytes, sandboxed=sandboxed,
                         host=os.uname().nodename)
    if out.reason:
        outcome.reason = out.reason
    elif not (jobdir / RESULT).is_file():
        outcome.reason = "died"
    else:
        outcome.result = json.loads((jobdir / RESULT).read_text())
        if (jobdir / PREDICTION).is_file():
            outcome.prediction = (jobdir / PREDICTION).read_bytes()
    return outcome


def _localise(job: Job, root: Path) -> Job:
    """The job with plugin paths valid on this machine (a submission's code written under ``root``)."""
    src = PluginSource.from_dict(job.source)
    if src.kind == "submission" and job.submission_code is not None:
        path = root / "code" / Path(src.target).name
        path.parent.mkdir(parents=True)
        path.write_text(job.submission_code)
        src = replace(src, target=str(path), paths=(str(path),))
    elif src.kind != "submission" and not all(os.path.exists(p) for p in src.paths):
        src = replace(src, paths=module_paths(src.target))  # installed elsewhere on this machine
    return replace(job, source=src.to_dict())


def run_remote_job(job: Job, input_bytes: bytes) -> JobOutcome:
    """The Dask task: run ``job`` in a temporary folder of the worker machine, return its outcome."""
    with tempfile.TemporaryDirectory(prefix="qsnmc-job-") as tmp:
        root = Path(tmp)
        job = _localise(job, root)
        log_path = root / "worker.log"
        outcome = run_job(job, root / "job", None, input_bytes, log_path)
        try:
            outcome.log = log_path.read_text(errors="replace")[-200_000:]
        except OSError:
            pass
    try:
        from distributed import get_worker

        outcome.host = get_worker().address
    except (ImportError, ValueError):
        pass
    return outcome


class LocalExecutor:
    """Runs each job as a sandboxed subprocess of this machine, ``jobs`` at a time."""

    kind = "local"

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, int(jobs))

    def concurrency(self, n_jobs: int) -> int:
        return self.jobs

    def prepare(self, input_file: Path, n_jobs: int) -> Path:
        """The handle of a challenge's public input for :meth:`execute`: here, the file itself."""
        self._input_file = input_file
        return input_file

    def execute(self, job: Job, model_dir: Path, input_handle: Path | None = None) -> JobOutcome:
        """Run ``job`` on the input ``input_handle`` (default: the last one prepared)."""
        jobdir = model_dir / "job"
        shutil.rmtree(jobdir, ignore_errors=True)
        try:
            outcome = run_job(job, jobdir, input_handle or self._input_file, None, model_dir / "worker.log")
        finally:
            shutil.rmtree(jobdir, ignore_errors=True)
        return outcome

    def close(self) -> None:
        pass


class DaskExecutor:
    """Runs each job as a task on a ``dask.distributed`` cluster.

    Args:
        scheduler: the scheduler's address (``tcp://HOST:PORT``); None starts a
            ``LocalCluster`` of ``n_workers`` single-threaded worker processes.
        n_workers: workers of the LocalCluster started when ``scheduler`` is None.
        client: an existing ``distributed.Client`` to use instead (tests, benchmarks).
        deadline_s: client-side limit per task (s); default: the model's time limit times
            the number of waves the cluster needs for all jobs, plus :data:`DASK_GRACE_S`.
    """

    kind = "dask"

    def __init__(self, scheduler: str | None = None, n_workers: int = 2, client: Any = None,
                 deadline_s: float | None = None) -> None:
        from distributed import Client, LocalCluster

        self._own_cluster = None
        self._own_client = client is None
        if client is None:
            if scheduler:
                client = Client(scheduler, timeout="30s")
            else:
                self._own_cluster = LocalCluster(n_workers=max(1, n_workers), threads_per_worker=1,
                                                 processes=True, dashboard_address=None)
                client = Client(self._own_cluster)
        self.client = client
        self.deadline_s = deadline_s
        self._input = None
        self._inputs: list[Any] = []
        self._waves = 1

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    def _threads(self) -> int:
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001 - a scheduler that does not answer: assume one
            return 1

    def concurrency(self, n_jobs: int) -> int:
        return max(1, n_jobs)  # the cluster queues; each client thread only waits

    def prepare(self, input_file: Path, n_jobs: int) -> Any:
        """Ship a challenge's public input to every worker once (not once per task); return its
        handle for :meth:`execute`. ``n_jobs``: every job queued on the cluster in this run (all
        cells of a suite), which sets the default deadline."""
        self._input = self.client.scatter(input_file.read_bytes(), broadcast=True)  # survives one lost worker
        self._inputs.append(self._input)
        self._waves = math.ceil(max(1, n_jobs) / self._threads())
        return self._input

    def execute(self, job: Job, model_dir: Path, input_handle: Any = None) -> JobOutcome:
        """Run ``job`` as a task on the input ``input_handle`` (default: the last one prepared)."""
        from distributed import TimeoutError as DaskTimeout

        deadline = self.deadline_s or job.timeout_s * self._waves + DASK_GRACE_S
        key = f"qsnmc-{job.model}-{uuid.uuid4().hex[:8]}"
        start = time.monotonic()
        future = self.client.submit(run_remote_job, job, self._input if input_handle is None else input_handle,
                                    key=key, pure=False, retries=0)
        try:
            outcome = future.result(timeout=deadline)
        except (DaskTimeout, TimeoutError):
            future.cancel()
            outcome = JobOutcome(reason="lost", detail=f"no answer from the Dask cluster within {deadline:g} s")
        except Exception as exc:  # noqa: BLE001 - KilledWorker, a lost scheduler, ...
            future.cancel()
            outcome = JobOutcome(reason="lost", detail=f"the Dask task failed ({type(exc).__name__}: {exc})")
        if outcome.wall_s is None:
            outcome.wall_s = time.monotonic() - start
        (model_dir / "worker.log").write_text(outcome.log)
        outcome.log = tail(model_dir / "worker.log")
        return outcome

    def close(self) -> None:
        if self._inputs:
            try:
                self.client.cancel(self._inputs)
            except Exception:  # noqa: BLE001
                pass
        if self._own_client:
            self.client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()


def make_executor(kind: str, *, jobs: int = 1, scheduler: str | None = None) -> LocalExecutor | DaskExecutor:
    """The executor named by ``--executor`` (``local`` or ``dask``)."""
    if kind == "local":
        return LocalExecutor(jobs)
    if kind == "dask":
        return DaskExecutor(scheduler=scheduler, n_workers=max(1, jobs))
    raise ValueError(f"unknown executor {kind!r} (local or dask)")
