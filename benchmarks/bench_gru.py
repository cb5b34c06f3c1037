"""Benchmark of the gru model on the embedded challenge, over several seeds.

Per seed: fit time, predict time, held-out Gamma/R (the last 20 % of the training
window, on which checkpoints, readout and the predictor are chosen: optimistic) of a
single network and of the ensemble, and the test-window Gamma/R of both and of the
predictor the fit chose; the device and the training throughput (bins per second).
Writes ``benchmarks/results/gru.json``.

Usage::

    python benchmarks/bench_gru.py [--seeds 0 1 2] [--budget 1.0] [--cell gru] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from qsnmc import load_challenge
from qsnmc.evaluation import score_predictions
from qsnmc_plugins.gru.model import GRUModel

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--cell", default="gru")
    ap.add_argument("--challenge", default=str(ROOT / "reference_data" / "embedded"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gru.json"))
    args = ap.parse_args()

    ch = load_challenge(args.challenge)
    train = ch.training_data()
    stim = ch.test_stimuli()[0]
    recorded_rate = float(np.mean([len(s) for s in ch.test_recordings(stim.name)]) / stim.duration_s)
    runs = []
    for seed in args.seeds:
        model = GRUModel(seed=seed, budget=args.budget, cell=args.cell)
        t0, c0 = time.perf_counter(), time.process_time()
        record = model.fit(train)
        fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        chosen = model.predict(stim)
        predict_s = time.perf_counter() - t0
        test = {}
        for name in model.predictors:
            spikes = chosen if name == record["chosen_predictor"] else model.predict_with(stim, name)
            test[name] = {"gamma_over_r": score_predictions(ch, {stim.name: spikes}).performance,
                          "rate_hz": len(spikes) / stim.duration_s}
        test_chosen = score_predictions(ch, {stim.name: chosen})
        run = {
            "seed": seed,
            "fit_time_s": fit_s,
            "fit_cpu_time_s": fit_cpu_s,
            "predict_time_s": predict_s,
            "device": record["device"],
            "training_samples_per_s": record["training"]["samples_per_s"],
            "chosen_predictor": record["chosen_predictor"],
            "readout": record["readout"],
            "heldout_gamma_over_r": record["heldout_gamma_over_r_by_predictor"],
            "test_gamma_over_r": {k: v["gamma_over_r"] for k, v in test.items()},
            "test_predicted_rate_hz": {k: v["rate_hz"] for k, v in test.items()},
            "test_chosen_gamma_over_r": test_chosen.performance,
            "test_chosen_error": test_chosen.error,
            "member_best_steps": [m["best_step"] for m in record["members"]],
            "heldout_curves": [m["heldout_gamma_over_r_curve"] for m in record["members"]],
        }
        runs.append(run)
        print(json.dumps({k: run[k] for k in ("seed", "fit_time_s", "predict_time_s", "chosen_predictor",
                                                "heldout_gamma_over_r", "test_gamma_over_r")}, indent=1), flush=True)
    chosen_p = [r["test_chosen_gamma_over_r"] for r in runs]
    result = {
        "model": "gru", "challenge": ch.name, "budget": args.budget, "cell": args.cell,
        "test_recorded_rate_hz": recorded_rate,
        "runs": runs,
        "test_chosen_gamma_over_r_range": [min(chosen_p), max(chosen_p)],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "2 CPU cores shared with other jobs: wall times are inflated by contention"},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
