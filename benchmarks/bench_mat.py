"""Benchmark of the MAT plugin on the embedded challenge at the default budget.

Measures the fit time, the prediction time, and Gamma/R on the training window
(the fit part and the whole window), on the held-out part of the training window,
and on the hidden test window; writes ``benchmarks/results/mat.json``.

Usage::

    python benchmarks/bench_mat.py [--budget 1.0] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from qsnmc import load_challenge
from qsnmc import Stimulus
from qsnmc.challenges.datadir import embedded_challenge_dir
from qsnmc import evaluate_in_process
from qsnmc.scoring.metrics import intrinsic_reliability, repetition_gammas

from qsnmc_plugins.mat.model import MATModel

RESULTS = Path(__file__).resolve().parent / "results" / "mat.json"


def training_window_score(model: MATModel, challenge) -> dict:
    """Gamma and Gamma/R of the fitted model over each whole training window (training data only)."""
    out = {}
    for s in challenge.training_data().stimuli:
        pred = model.predict(Stimulus(s.name, s.dt_s, s.current_pA, s.window_s, s.n_repetitions))
        dur = s.window_s[1] - s.window_s[0]
        g = repetition_gammas(s.spike_times_s, pred, challenge.delta_s, duration=dur)
        r = intrinsic_reliability(s.spike_times_s, challenge.delta_s, duration=dur)
        out[s.name] = {"gamma": float(g.mean()), "reliability": r, "gamma_over_R": float(g.mean() / r)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    challenge = load_challenge(embedded_challenge_dir())
    model = MATModel(seed=args.seed, budget=args.budget)
    run = evaluate_in_process(model, challenge)
    record, score, fit_s, predict_s = run.record, run.score, run.fit_s, run.predict_s
    train_scores = training_window_score(model, challenge)
    result = {
        "model": model.name,
        "challenge": challenge.name,
        "budget": args.budget,
        "seed": args.seed,
        "fit_time_s": fit_s,
        "predict_time_s": predict_s,
        "training_fit_part_gamma_over_R": record["details"]["fit_part_performance"],
        "training_window_gamma_over_R": float(np.mean([v["gamma_over_R"] for v in train_scores.values()])),
        "heldout_gamma_over_R": record["held_out"]["performance"],
        "test_gamma": score.gamma,
        "test_gamma_over_R": score.performance,
        "test_error": score.error,
        "test_spike_count": {k: int(np.size(v)) for k, v in run.predictions.items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "note": "2 shared cores: timings inflated by contention"},
        "fit_record": record,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    summary = {k: v for k, v in result.items() if k not in ("fit_record", "machine")}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
