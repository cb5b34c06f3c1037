"""Benchmark of the GIF plugin on the embedded challenge at the default budget.

Measures the fit and prediction times and Gamma/R on the held-out part of the training
window (the model's own validation: fitted on the first 75 % of the window, the chosen
latency and readout) and on the hidden test window (39-60 s); writes
``benchmarks/results/gif.json``.

Usage::

    python benchmarks/bench_gif.py [--budget 1.0] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from qsnmc import challenge_dir, evaluate_in_process, load_challenge

from qsnmc_plugins.gif.model import GIFModel

RESULTS = Path(__file__).resolve().parent / "results" / "gif.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    challenge = load_challenge(challenge_dir("embedded"))
    model = GIFModel(seed=args.seed, budget=args.budget)
    run = evaluate_in_process(model, challenge)
    record, score = run.record, run.score
    counts = {k: float(np.mean([np.size(t) for t in (v if isinstance(v, list) else [v])]))
              for k, v in run.predictions.items()}
    result = {
        "model": model.name,
        "challenge": challenge.name,
        "budget": args.budget,
        "seed": args.seed,
        "fit_time_s": run.fit_s,
        "fit_cpu_s": run.fit_cpu_s,
        "predict_time_s": run.predict_s,
        "prediction_mode": record["fitted"]["prediction_mode"],
        "deterministic_level_hz": record["fitted"]["deterministic_level_hz"],
        "latency_ms": record["fitted"]["latency_ms"],
        "heldout_gamma_over_R": record["held_out"]["performance"],
        "test_gamma": score.gamma,
        "test_gamma_over_R": score.performance,
        "test_error": score.error,
        "test_mean_spike_count": counts,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "2 cores shared with other jobs: wall times inflated"},
        "fit_record": record,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("fit_record", "machine")}, indent=1))


if __name__ == "__main__":
    main()
