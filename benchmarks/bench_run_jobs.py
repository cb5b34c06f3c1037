"""Time ``qsnmc run`` of four cheap models with ``--jobs 1``, ``--jobs 2`` and through Dask.

Run: ``python benchmarks/bench_run_jobs.py``; writes ``benchmarks/results/run_jobs.json``.
Models: the two baselines (poisson, lif), the example submission and a fresh ``qsnmc new``
skeleton, on the embedded challenge at the default budget, without the cache. Modes:

- ``jobs1``: local executor, one model at a time;
- ``jobs2``: local executor, two at a time;
- ``dask_localcluster``: ``--executor dask --jobs 2`` (the CLI starts a 2-worker LocalCluster:
  its start-up is included);
- ``dask_scheduler``: ``--executor dask --scheduler ADDR`` on a 2-worker LocalCluster that is
  already running (the cost of the Dask path itself).

Each mode is a real CLI subprocess (discovery, sandboxed workers, scoring, table), repeated
``REPEATS`` times (modes interleaved); the minimum wall time is kept. Ratios are against ``jobs1``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "run_jobs.json"
MODELS = ["poisson", "lif", "example-threshold", "bench-skeleton"]
REPEATS = 3


def timed_run(cwd: Path, extra: list[str]) -> tuple[float, dict[str, dict]]:
    """Wall time of one CLI run, and its model records (scores, fit/predict/worker times)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qsnmc.cli", "run", *MODELS, "--quiet", "--no-cache", *extra],
                   cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    run_dir = cwd / "runs" / (cwd / "runs" / "LATEST").read_text().strip()
    return wall, {m: json.loads((run_dir / m / "record.json").read_text()) for m in MODELS}


def main() -> None:
    from distributed import Client, LocalCluster

    modes = {"jobs1": ["--jobs", "1"], "jobs2": ["--jobs", "2"], "dask_localcluster": ["--executor", "dask", "--jobs", "2"]}
    results: dict = {"models": MODELS, "cores": os.cpu_count(), "repeats": REPEATS, "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "submissions").mkdir()
        shutil.copy(ROOT / "submissions" / "example_threshold.py", cwd / "submissions")
        subprocess.run([sys.executable, "-m", "qsnmc.cli", "new", "bench-skeleton"], cwd=cwd, check=True,
                       capture_output=True)
        tables = {}
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
                Client(lc):
            modes["dask_scheduler"] = ["--executor", "dask", "--scheduler", lc.scheduler_address]
            walls: dict[str, list[float]] = {mode: [] for mode in modes}
            for _ in range(REPEATS):  # modes interleaved, so that a busy spell of the machine hits them all
                for mode, extra in modes.items():
                    wall, rows = timed_run(cwd, extra)
                    walls[mode].append(wall)
                    tables[mode] = {m: (r["status"], r["performance"]) for m, r in rows.items()}
                    results["modes"][mode] = {
                        "args": extra if mode != "dask_scheduler" else ["--executor", "dask", "--scheduler", "ADDR"],
                        "wall_s": walls[mode],
                        "best_wall_s": min(walls[mode]),
                        "per_model": {m: {"status": r["status"], "fit_s": r["fit_s"], "predict_s": r["predict_s"],
                                          "worker_wall_s": r.get("wall_s"), "performance": r["performance"]}
                                      for m, r in rows.items()},
                    }
                    print(f"{mode}: {wall:.1f} s", file=sys.stderr)
    base = results["modes"]["jobs1"]["best_wall_s"]
    results["speedup_vs_jobs1"] = {m: base / v["best_wall_s"] for m, v in results["modes"].items()}
    results["same_table_in_every_mode"] = all(t == tables["jobs1"] for t in tables.values())
    results["note"] = ("wall times of whole CLI runs (discovery, input writing, sandboxed workers, scoring) on a "
                       "machine shared with other jobs: absolute times are inflated by contention")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: results[k] for k in ("speedup_vs_jobs1", "same_table_in_every_mode")}, indent=1))


if __name__ == "__main__":
    main()
