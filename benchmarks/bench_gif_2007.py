"""The GIF plugin on the real 2007 cell's recorded training data (held-out report only).

Imports nothing itself: expects ``qsnmc data import-qsnmc2007`` to have put ``qsnmc2007a`` in
``$QSNMC_DATA_DIR``. Uses only ``challenge.training_data()``: every stimulus is cut with
``time_split(12/34)``; the model fits on 0-22 s (choosing its own settings on a split inside
that part) and predicts 22-34 s, reported per stimulus (Gamma/R, predicted / recorded spike
counts) for the stimuli that repeat (00, 04, 05, 11; R >= 0.3). Writes
``benchmarks/results/gif_2007.json``.

Usage::

    QSNMC_DATA_DIR=/tmp/gifdata python benchmarks/bench_gif_2007.py [--seed 0] [--budget 1]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qsnmc import challenge_dir, load_challenge, score_heldout

from qsnmc_plugins.gif.model import GIFModel

RESULTS = Path(__file__).resolve().parent / "results" / "gif_2007.json"
REPORTED = ("00", "04", "05", "11")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    challenge = load_challenge(challenge_dir("qsnmc2007a"))
    train = challenge.training_data()
    fold = train.time_split(12.0 / 34.0)
    model = GIFModel(seed=args.seed, budget=args.budget)
    t0 = time.perf_counter()
    record = model.fit(fold.fit)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    heldout = [h for h in fold.heldout if h.name in REPORTED]
    predictions = {h.name: model.predict(h.stimulus) for h in heldout}
    predict_s = time.perf_counter() - t0
    score = score_heldout(predictions, heldout, train.delta_s)
    result = {
        "model": model.name, "data": "qsnmc2007a training recordings; fit 0-22 s, report 22-34 s",
        "budget": args.budget, "seed": args.seed, "fit_time_s": fit_s, "predict_time_s": predict_s,
        "heldout_22_34_P": score.performance,
        "per_stimulus": [s.to_dict() for s in score.stimuli],
        "fit_record": record,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "fit_record"}, indent=1))
    fitted = record["fitted"]
    print("chosen:", fitted["readout"], "latency ms", fitted["latency_ms"], "inner validation P",
          record["held_out"]["performance"])


if __name__ == "__main__":
    main()
