"""Time the whole ``qsnmc run`` of the baselines on the embedded challenge (fresh and cached).

Run: ``python benchmarks/bench_run_baselines.py``; writes ``benchmarks/results/run_baselines.json``.
Each run is a real CLI subprocess: discovery, sandboxed workers, scoring, table.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "run_baselines.json"
MODELS = ["poisson", "lif", "example-threshold"]
ROOT = Path(__file__).resolve().parents[1]


def timed_run(args: list[str], cwd: Path) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qsnmc.cli", "run", *MODELS, "--quiet", "--json", "rows.json",
                    "--submissions", str(ROOT / "submissions"), *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t0, json.loads((cwd / "rows.json").read_text())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qsnmc.cli", "list", "--submissions", str(ROOT / "submissions")],
                       cwd=cwd, check=True, capture_output=True)
        list_s = time.perf_counter() - t0
        fresh_s, rows = timed_run(["--no-cache"], cwd)
        cached_s, _ = timed_run([], cwd)
    results = {
        "models": MODELS,
        "list_s": list_s,
        "run_fresh_s": fresh_s,
        "run_cached_s": cached_s,
        "per_model": {r["model"]: {"fit_s": r["fit_s"], "predict_s": r["predict_s"],
                                   "performance": r["performance"]} for r in rows},
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
