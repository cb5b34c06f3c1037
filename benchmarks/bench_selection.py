"""Nested validation of the gru recipe's selection rules, inside the training data only.

Each challenge's training data is split once more (:mod:`qsnmc_plugins.hazard.selection`): the
last ``--probe`` of every training window is the *probe*, standing in for the test window; a gru
(any arm of ``bench_rnn_ablation.py`` that is a gru) fits on the rest with its own held-out part
(``--heldout``: the entry's 0.2, or a longer 0.4 at the same training cost), and every evaluated
checkpoint is scored on both (:class:`qsnmc_plugins.gru.nested.ProbedGRUModel`). The rules
(held-out P, held-out cross-entropy, the last checkpoint; each with either held-out part) are then
judged by how they rank the checkpoints of a run and the runs (settings, seeds) against the
probe, and by the probe P of what they keep. No test window is read: only
``Challenge.training_data()``.

Writes ``results/selection_<challenge>.json`` (one row per run, appended as each finishes) and
prints the agreement table of every row measured so far.

Usage::

    python benchmarks/bench_selection.py --challenge embedded --arms gru,gru-fast,lstm,ln,dendplrnn-cell
    python benchmarks/bench_selection.py --table
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_rnn_ablation import ARMS  # noqa: E402  (the ablation's arms; only the gru's are used here)

from qsnmc import challenge_dir, load_challenge  # noqa: E402
from qsnmc.settings import parse_overrides  # noqa: E402
from qsnmc_plugins.gru.nested import ProbedGRUModel  # noqa: E402
from qsnmc_plugins.hazard.selection import RULES, ScoredCheckpoint, agreement, nested_split, picked  # noqa: E402

GRU_ARMS = [a for a, (model, _) in ARMS.items() if model == "gru"]


def run_one(challenge: str, arm: str, seed: int, heldout: float, budget: float, probe: float) -> dict:
    """One probed fit: its settings, fit time and every checkpoint's held-out and probe scores."""
    train = load_challenge(challenge_dir(challenge)).training_data()  # training windows only
    split = nested_split(train, probe)
    params = parse_overrides(ARMS[arm][1])
    model = ProbedGRUModel(split, f"{arm} seed {seed}", seed=seed, budget=budget, heldout_fraction=heldout, **params)
    t = time.perf_counter()
    record = model.fit()
    return {"challenge": challenge, "arm": arm, "seed": seed, "heldout": heldout, "budget": budget, "probe": probe,
            "params": ARMS[arm][1], "fit_s": time.perf_counter() - t,
            "held_out_p": record["held_out"]["performance"],
            "checkpoints": [c.as_record() for c in model.checkpoints]}


def load_rows() -> list[dict]:
    return [r for p in sorted(RESULTS.glob("selection_*.json")) for r in json.loads(p.read_text())]


def markdown(rows: list[dict]) -> str:
    """Per challenge, held-out part and rule: rank agreement with the probe and what the rule keeps."""
    lines = ["| challenge | held-out part | rule | rho, checkpoints in a run | rho, runs | rho, pooled | "
             "probe P kept % | regret % | runs |", "|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[ScoredCheckpoint]] = {}
    for r in rows:
        key = (r["challenge"], r["heldout"], r["budget"], r["probe"])
        groups.setdefault(key, []).extend(ScoredCheckpoint(**c) for c in r["checkpoints"])
    for (challenge, heldout, budget, probe), cands in sorted(groups.items()):
        for rule in RULES:
            a = agreement(cands, rule)
            lines.append(f"| {challenge} | {heldout:g} | {rule} | {a['checkpoints']:.2f} | {a['runs']:.2f} | "
                         f"{a['pooled']:.2f} | {100 * a['kept_probe_p']:.1f} | {100 * a['regret']:.1f} | "
                         f"{a['n_runs']} |")
    lines += ["", "| challenge | held-out part | arm | seed | held-out P % (kept) | probe P % (kept) | "
              "best probe P % (any checkpoint) | fit s |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["challenge"], r["heldout"], r["arm"], r["seed"])):
        cands = [ScoredCheckpoint(**c) for c in r["checkpoints"]]
        kept = picked(cands, "held-out P")
        lines.append(f"| {r['challenge']} | {r['heldout']:g} | {r['arm']} | {r['seed']} | "
                     f"{100 * kept.held_out_p:.1f} | {100 * kept.probe_p:.1f} | "
                     f"{100 * max(c.probe_p for c in cands):.1f} | {r['fit_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--challenge", action="append", default=[], help="repeatable (default: embedded)")
    ap.add_argument("--arms", default="gru,gru-fast,lstm,ln,dendplrnn-cell", help=f"of {', '.join(GRU_ARMS)}")
    ap.add_argument("--seeds", default="0", help="comma-separated")
    ap.add_argument("--heldout", default="0.2,0.4", help="the runs' own held-out fractions, comma-separated")
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--probe", type=float, default=0.2, help="fraction of each training window used as the probe")
    ap.add_argument("--table", action="store_true", help="print the table of every row measured, run nothing")
    args = ap.parse_args()
    if args.table:
        print(markdown(load_rows()))
        return
    arms = args.arms.split(",")
    if set(arms) - set(GRU_ARMS):
        ap.error(f"unknown arm(s) {sorted(set(arms) - set(GRU_ARMS))}; choose from {', '.join(GRU_ARMS)}")
    fractions = [float(f) for f in args.heldout.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    for challenge in args.challenge or ["embedded"]:
        out = RESULTS / f"selection_{challenge}.json"
        for heldout in fractions:  # the entry's own part first: every arm, then the longer part
            for seed in seeds:
                for arm in arms:
                    row = run_one(challenge, arm, seed, heldout, args.budget, args.probe)
                    old = json.loads(out.read_text()) if out.exists() else []
                    same = ("arm", "seed", "heldout", "budget", "probe")
                    old = [r for r in old if any(r[k] != row[k] for k in same)]
                    out.write_text(json.dumps(old + [row], indent=1))
                    print(f"{challenge} {arm} seed {seed} held-out {heldout:g}: {row['fit_s']:.0f} s", flush=True)
    print(markdown(load_rows()))


if __name__ == "__main__":
    main()
