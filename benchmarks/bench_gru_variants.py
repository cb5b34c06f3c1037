"""Held-out comparison of gru training variants (one network per model seed; embedded challenge).

Each variant overrides settings of :class:`qsnmc_plugins.gru.model.GRUSettings` (steps, learning
rate, weight average, ...) through the model's constructor and fits one seed; prints and appends
one JSON line per fit to ``results/gru_variants.jsonl`` with the held-out curves (of the averaged
weights), the chosen readout and the fit's wall and CPU time. Test scores are NOT computed here:
settings are chosen on these held-out figures.

Usage::

    python benchmarks/bench_gru_variants.py --seed 0 --param steps=960 --param lr=0.005 --label NAME
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qsnmc.settings import parse_overrides as parse_params
from qsnmc import load_challenge
from qsnmc_plugins.gru.model import GRUModel

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of the gru model (VALUE as JSON); repeatable")
    ap.add_argument("--label", default="")
    ap.add_argument("--challenge", default=str(ROOT / "reference_data" / "embedded"))
    ap.add_argument("--save", default="", help="pickle the fitted model here (for later readout studies)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gru_variants.jsonl"))
    args = ap.parse_args()
    overrides = parse_params(args.param)
    train = load_challenge(args.challenge).training_data()
    model = GRUModel(seed=args.seed, **overrides)
    t0, c0 = time.perf_counter(), time.process_time()
    rec = model.fit(train)
    row = {"label": args.label, "seed": args.seed, "overrides": overrides,
           "fit_s": time.perf_counter() - t0, "fit_cpu_s": time.process_time() - c0,
           "chosen": rec["fitted"]["chosen_predictor"],
           "heldout": {c["choice"]["predictor"]: c["objective"] for c in rec["candidates"]},
           "readout": rec["fitted"]["readout"], "held_out_per_stimulus": rec["held_out"]["per_stimulus"],
           "channels": rec["details"]["channels"], "samples_per_s": rec["details"]["samples_per_s"],
           "members": rec["details"]["members"], "curves": {k: v for k, v in rec["curves"].items() if "held-out" in k},
           "saved": str(Path(args.save).resolve()) if args.save else ""}
    print(json.dumps(row), flush=True)
    if args.save:
        import pickle

        Path(args.save).write_bytes(pickle.dumps(model))
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
