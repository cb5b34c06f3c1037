"""Time ``qsnmc run`` of the cheap models over one seed and over seeds 0-2, fresh and cached.

Run: ``python benchmarks/bench_run_seeds.py``; writes ``benchmarks/results/run_seeds.json``.
Each run is a real CLI subprocess (discovery, sandboxed workers, scoring, table) on the
embedded challenge, default budget, the default ``--jobs``. "Fresh" starts from an empty runs
folder (and fills its cache); "cached" repeats the same command; "one more seed" then runs
``--seeds 0-3``, which fits only seed 3. The load average beside each figure says how shared
the machine was.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "run_seeds.json"
MODELS = ["poisson", "lif", "example-threshold"]
ROOT = Path(__file__).resolve().parents[1]


def timed_run(args: list[str], cwd: Path) -> dict:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qsnmc.cli", "run", *MODELS, "--quiet", "--json", "rows.json",
                    "--submissions", str(ROOT / "submissions"), *args], cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    rows = json.loads((cwd / "rows.json").read_text())
    return {"args": args, "wall_s": wall, "load_avg_1min_before": load,
            "jobs_cached": sum(s["cached"] for r in rows for s in r["seeds"]),
            "jobs": sum(len(r["seeds"]) for r in rows),
            "rows": {r["model"]: {"performance": r["performance"], "error": r["error"], "seed_sd": r["seed_sd"],
                                  "per_seed": [s["performance"] for s in r["seeds"]]} for r in rows}}


def main() -> None:
    results: dict = {"models": MODELS, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as three:
        results["one_seed_fresh"] = timed_run(["--seed", "0"], Path(one))
        results["one_seed_cached"] = timed_run(["--seed", "0"], Path(one))
        results["three_seeds_fresh"] = timed_run(["--seeds", "0-2"], Path(three))
        results["three_seeds_cached"] = timed_run(["--seeds", "0-2"], Path(three))
        results["one_more_seed"] = timed_run(["--seeds", "0-3"], Path(three))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v["wall_s"] for k, v in results.items() if isinstance(v, dict)}, indent=1))


if __name__ == "__main__":
    main()
