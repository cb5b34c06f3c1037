"""Benchmark of the dendplrnn model on the embedded challenge.

Measures fit time, predict time and Gamma/R on the training part, the held-out part
(the last 20 % of the training window: no training window is drawn from it, but the
selection score that chooses restarts and checkpoints covers it, so the figure is
optimistic) and the hidden test window, at the default budget. Writes
``benchmarks/results/dendplrnn.json``.

Usage::

    python benchmarks/bench_dendplrnn.py [--budget 1.0] [--seed 0] [--challenge DIR]
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
from qsnmc import Stimulus
from qsnmc.scoring.evaluation import score_predictions
from qsnmc_plugins.dendplrnn.model import DendPLRNNModel
from qsnmc_plugins.dendplrnn.readout import normalised_gamma

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--challenge", default=str(ROOT / "reference_data" / "embedded"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dendplrnn.json"))
    args = ap.parse_args()

    ch = load_challenge(args.challenge)
    train = ch.training_data()
    model = DendPLRNNModel(seed=args.seed, budget=args.budget)
    t0, c0 = time.perf_counter(), time.process_time()
    record = model.fit(train)
    fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    stim = ch.test_stimuli()[0]
    t0 = time.perf_counter()
    test_spikes = model.predict(stim)
    predict_s = time.perf_counter() - t0
    test = score_predictions(ch, {stim.name: test_spikes})

    # training part: one free run from rest over the whole training window (an unseen-protocol
    # prediction, no warm-up on the recording), scored on the part the fit trained on
    tr = train.stimuli[0]
    split_s = record["heldout_window_s"][0]
    free = model.predict(Stimulus("bench-free-run", tr.dt_s, tr.current_pA, tr.window_s, tr.n_repetitions))
    part = lambda ts, lo, hi: ts[(ts >= lo) & (ts < hi)]  # noqa: E731
    lo, hi = tr.window_s[0], split_s
    train_gamma = normalised_gamma([part(s, lo, hi) for s in tr.spike_times_s], part(free, lo, hi),
                                   train.delta_s, hi - lo)
    hold_free = normalised_gamma([part(s, split_s, tr.window_s[1]) for s in tr.spike_times_s],
                                 part(free, split_s, tr.window_s[1]), train.delta_s, tr.window_s[1] - split_s)
    rate = lambda ts, dur: len(ts) / dur  # noqa: E731
    result = {
        "model": "dendplrnn",
        "challenge": ch.name,
        "budget": args.budget,
        "seed": args.seed,
        "fit_time_s": fit_s,
        "fit_cpu_time_s": fit_cpu_s,
        "predict_time_s": predict_s,
        "training_gamma_over_R": train_gamma,
        "heldout_gamma_over_R": record["heldout_gamma_over_R"],
        "heldout_gamma_over_R_free_run_from_rest": hold_free,
        "test_gamma_over_R": test.performance,
        "test_error": getattr(test, "error", None),
        "test_predicted_rate_hz": rate(test_spikes, stim.duration_s),
        "test_recorded_rate_hz": float(np.mean([rate(s, stim.duration_s) for s in ch.test_recordings(stim.name)])),
        "chosen": {k: record[k] for k in ("tau_steps", "tau_s", "latent_dim_M", "n_bases_B", "threshold_mV", "dt_model_s",
                                                "input_filter_taus_s")} | {"ema_decay": record["training"]["ema_decay"],
                                                                           "iterations": record["training"]["iterations"]},
        "selection": record["selection"],
        "loss_curve": record["loss_curve"],
        "selection_curve": record["selection_curve"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "2 CPU cores shared with other jobs: times are inflated by contention"},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    keys = ("fit_time_s", "fit_cpu_time_s", "predict_time_s", "training_gamma_over_R", "heldout_gamma_over_R", "test_gamma_over_R")
    print(json.dumps({k: result[k] for k in keys} | {"chosen": result["chosen"]}, indent=1))


if __name__ == "__main__":
    main()
