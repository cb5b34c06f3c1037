"""A recurrent entry's recipe judged on a probe inside the training data: mean and spread over seeds.

Each challenge's training data is split in time once more (:func:`selection_rules.nested_split`):
the last ``--probe`` of every training window stands in for the test window, and the entry fits on
the rest exactly as it fits on a challenge (its own held-out part, checkpoints, predictor choice).
Every predictor the fit compared (each member alone, the ensembles) is then scored on the probe, so
one fit of K members also says what one member alone would have scored. No test window is read:
only ``Challenge.training_data()``.

Used to choose the gru's members and steps for issue 35 (seed-to-seed spread at an equal cost).
One fit per process (the worker's portable torch kernels, one thread); rows are appended to
``results/rnn_recipe.jsonl`` as each fit ends.

Usage::

    python benchmarks/bench_rnn_recipe.py fit --challenge embedded --arm gru-2x400 --seed 0
    python benchmarks/bench_rnn_recipe.py table
"""
from __future__ import annotations

import argparse
import fcntl
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "rnn_recipe.jsonl"
sys.path.insert(0, str(ROOT / "benchmarks"))

# arm -> (entry, settings overrides); the cost is members x steps optimiser steps. The gru arms keep
# the predictor of best held-out P; the table's "all members averaged" column is the rule
# predictor="ensemble" (the same fit: every predictor is scored on the probe).
ARMS: dict[str, tuple[str, dict]] = {
    "gru-1x800": ("gru", {"members": 1, "steps": 800, "predictor": "best"}),  # the default before 2026-12-07
    "gru-2x400": ("gru", {"members": 2, "steps": 400, "predictor": "best"}),  # with "ensemble": the default since
    "gru-3x300": ("gru", {"members": 3, "steps": 300, "predictor": "best"}),
    "dendplrnn": ("dendplrnn", {}),  # the entry's default: its probe spread beside its test spread
}


def fit_one(challenge: str, arm: str, seed: int, budget: float, probe: float) -> dict:
    """Fit one arm at one seed on the inner part; the probe P of every predictor it compared."""
    from qsnmc.fitting.torch_numerics import portable_torch_numerics

    kernels = portable_torch_numerics()  # before any plugin imports torch, as a worker does
    from qsnmc import challenge_dir, load_challenge
    from qsnmc.scoring.validation import score_heldout
    from selection_rules import nested_split

    entry, overrides = ARMS[arm]
    if entry == "gru":
        from qsnmc_plugins.gru.model import GRUModel as Entry
    else:
        from qsnmc_plugins.dendplrnn.model import DendPLRNNModel as Entry
    split = nested_split(load_challenge(challenge_dir(challenge)).training_data(), probe)
    model = Entry(seed, budget, **overrides)
    t0 = time.perf_counter()
    record = model.fit(split.inner)
    fit_s = time.perf_counter() - t0
    probe_p = {}
    for name in model.predictors:
        predictions = {h.name: model.predict_with(h.stimulus, name) for h in split.probe}
        probe_p[name] = score_heldout(predictions, split.probe, split.inner.delta_s).performance
    return {"challenge": challenge, "arm": arm, "seed": seed, "budget": budget, "probe_fraction": probe,
            "overrides": overrides, "chosen": model.chosen, "probe_p": probe_p,
            "probe_p_chosen": probe_p[model.chosen],
            "held_out_p": {c["choice"]["predictor"]: c["objective"] for c in record["candidates"]},  # its held-out P
            "best_steps": [m.get("best_step", m.get("best_iteration")) for m in record["details"]["members"]],
            "fit_s": round(fit_s, 1), "kernels": kernels,
            "members": record["details"]["members"]}


def append(row: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(row) + "\n")


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def table() -> str:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    out = ["| cell | arm | seeds | probe P % (kept predictor), mean | SD | range | all members averaged, mean | SD "
           "| member 0 alone, mean | SD | fit s, max |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for cell in sorted({r["challenge"] for r in rows}):
        for arm in ARMS:
            rs = sorted((r for r in rows if r["challenge"] == cell and r["arm"] == arm), key=lambda r: r["seed"])
            if not rs:
                continue
            kept = [100 * r["probe_p_chosen"] for r in rs]
            every = [100 * r["probe_p"].get("ensemble", r["probe_p"]["member 0"]) for r in rs]
            alone = [100 * r["probe_p"]["member 0"] for r in rs]
            out.append(f"| {cell} | {arm} | {','.join(str(r['seed']) for r in rs)} | {statistics.mean(kept):.1f} | "
                       f"{_sd(kept):.1f} | {min(kept):.1f}-{max(kept):.1f} | {statistics.mean(every):.1f} | "
                       f"{_sd(every):.1f} | {statistics.mean(alone):.1f} | {_sd(alone):.1f} | "
                       f"{max(r['fit_s'] for r in rs):.0f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit one arm at one seed and append its row")
    fit.add_argument("--challenge", required=True)
    fit.add_argument("--arm", choices=sorted(ARMS), required=True)
    fit.add_argument("--seed", type=int, required=True)
    fit.add_argument("--budget", type=float, default=1.0)
    fit.add_argument("--probe", type=float, default=0.2, help="fraction of every training window probed")
    sub.add_parser("table", help="print the table of every row so far")
    args = parser.parse_args()
    if args.command == "fit":
        append(fit_one(args.challenge, args.arm, args.seed, args.budget, args.probe))
    else:
        print(table())


if __name__ == "__main__":
    main()
