"""Held-out comparison of gru training variants (one network per model seed; embedded challenge).

Each variant overrides module settings of :mod:`qsnmc_plugins.gru.model` (steps, learning
rate, weight average, ...) and fits one seed; prints and appends one JSON line per fit to
``results/gru_variants.jsonl`` with the held-out curves (raw and averaged weights), the
chosen readout and the fit's wall and CPU time. Test scores are NOT computed here: settings
are chosen on these held-out figures.

Usage::

    python benchmarks/bench_gru_variants.py --seed 0 --set STEPS=960 LR=0.005 EMA_DECAY=0.99 --label NAME
"""
from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

from qsnmc import load_challenge

import qsnmc_plugins.gru.model as gm

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], help="NAME=VALUE overrides of gru.model constants")
    ap.add_argument("--label", default="")
    ap.add_argument("--challenge", default=str(ROOT / "reference_data" / "embedded"))
    ap.add_argument("--save", default="", help="pickle the fitted model here (for later readout studies)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gru_variants.jsonl"))
    args = ap.parse_args()
    overrides = {}
    for item in args.set:
        k, v = item.split("=", 1)
        if not hasattr(gm, k):
            raise SystemExit(f"gru.model has no setting {k}")
        overrides[k] = ast.literal_eval(v) if v[:1] not in "\"'" and not v.isalpha() else v.strip("\"'")
        setattr(gm, k, overrides[k])
    train = load_challenge(args.challenge).training_data()
    model = gm.GRUModel(seed=args.seed, members=gm.N_MEMBERS)
    t0, c0 = time.perf_counter(), time.process_time()
    rec = model.fit(train)
    row = {"label": args.label, "seed": args.seed, "overrides": overrides,
           "fit_s": time.perf_counter() - t0, "fit_cpu_s": time.process_time() - c0,
           "chosen": rec["chosen_predictor"], "heldout": rec["heldout_gamma_over_r_by_predictor"],
           "readout": rec["readout"], "held_out_per_stimulus": rec["held_out_per_stimulus"],
           "inputs": {k: v for k, v in rec["inputs"].items() if k != "scaling"},
           "samples_per_s": rec["training"]["samples_per_s"],
           "members": [{k: m[k] for k in m if k != "loss_curve"} for m in rec["members"]],
           "saved": str(Path(args.save).resolve()) if args.save else ""}
    print(json.dumps(row), flush=True)
    if args.save:
        import pickle

        Path(args.save).write_bytes(pickle.dumps(model))
    with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
