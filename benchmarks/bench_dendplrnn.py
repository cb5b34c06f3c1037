"""Benchmark of the dendplrnn model on a challenge, over several seeds: single network vs ensemble.

Per seed: fit time (wall and CPU), predict time, training throughput, the held-out P of every
predictor the fit compared (each member, the ensembles; chosen on it, so optimistic), and the
test-window P of each of them and of the chosen one (outcomes only: nothing is chosen on them).
Writes ``benchmarks/results/dendplrnn.json`` (or ``--out``).

Usage::

    python benchmarks/bench_dendplrnn.py [--seeds 0 1 2] [--budget 1.0] [--param KEY=VALUE] [--challenge DIR] [--out PATH]

``--param KEY=VALUE`` (VALUE as JSON, repeatable) sets the model's settings.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from qsnmc.settings import parse_overrides as parse_params
from qsnmc import load_challenge
from qsnmc.scoring.evaluation import score_predictions
from qsnmc_plugins.dendplrnn.model import DendPLRNNModel

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of the dendplrnn model (VALUE as JSON); repeatable")
    ap.add_argument("--challenge", default=str(ROOT / "reference_data" / "embedded"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dendplrnn.json"))
    args = ap.parse_args()

    ch = load_challenge(args.challenge)
    train = ch.training_data()
    stims = ch.test_stimuli()
    runs = []
    for seed in args.seeds:
        model = DendPLRNNModel(seed=seed, budget=args.budget, **parse_params(args.param))
        t0, c0 = time.perf_counter(), time.process_time()
        record = model.fit(train)
        fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        chosen = {s.name: model.predict(s) for s in stims}
        predict_s = time.perf_counter() - t0
        test = {}
        chosen_name = record["fitted"]["chosen_predictor"]
        for name in model.predictors:
            preds = chosen if name == chosen_name else {s.name: model.predict_with(s, name) for s in stims}
            test[name] = score_predictions(ch, preds).performance
        chosen_score = score_predictions(ch, chosen)
        run = {
            "seed": seed, "fit_time_s": fit_s, "fit_cpu_time_s": fit_cpu_s, "predict_time_s": predict_s,
            "device": record["details"]["device"],
            "training_samples_per_s": record["details"]["training"]["samples_per_s"],
            "chosen_predictor": chosen_name, "readout": record["fitted"]["readout"],
            "heldout_P": {c["choice"]["predictor"]: c["objective"] for c in record["candidates"]}, "test_P": test,
            "test_P_chosen": test[chosen_name], "test_error_chosen": chosen_score.error,
            "members": [{k: m[k] for k in ("tau_steps", "best_iteration", "heldout_P_at_best_checkpoint", "restarts")}
                        for m in record["details"]["members"]],
        }
        runs.append(run)
        print(json.dumps({k: run[k] for k in ("seed", "fit_time_s", "fit_cpu_time_s", "predict_time_s", "chosen_predictor",
                                                "heldout_P", "test_P")}, indent=1), flush=True)
    result = {"challenge": ch.name if hasattr(ch, "name") else str(args.challenge), "budget": args.budget,
              "params": parse_params(args.param),
              "machine": platform.processor() or platform.machine(), "load_average_at_end": os.getloadavg(),
              "runs": runs,
              "test_P_chosen_mean": float(np.mean([r["test_P_chosen"] for r in runs]))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
