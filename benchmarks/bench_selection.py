"""Nested validation of the gru recipe's selection rules, inside the training data only.

Each challenge's training data is split once more (:mod:`selection_rules`): the
last ``--probe`` of every training window is the *probe*, standing in for the test window; a gru
(any arm of ``bench_rnn_ablation.py`` that is a gru) fits on the rest with its own held-out part
(``--heldout``: the entry's 0.2, or a longer 0.4 at the same training cost), and every evaluated
checkpoint is scored on both (:class:`nested_gru.ProbedGRUModel`). The rules
(held-out P, held-out cross-entropy, the last checkpoint; each with either held-out part) are then
judged by how they rank the checkpoints of a run and the runs (settings, seeds) against the
probe, and by the probe P of what they keep. No test window is read: only
``Challenge.training_data()``.

``--folds time:3,stimulus:4`` measures rules that choose a setting by several folds of the inner
part at the same training cost as one fit: each of ``k`` folds
(:func:`~selection_rules.time_folds`, blocks of every window;
:func:`~selection_rules.stimulus_folds`, whole stimuli) trains one gru at
``budget / k`` (:class:`nested_gru.FoldedGRUModel`), and the setting's score is
its mean held-out P over the folds. These are judged against the probe P of the entry's own fit
of the same arm and seed (the 0.2 runs above), beside the entry's rule.

Writes ``results/selection_<challenge>.json`` (one row per run, appended as each finishes;
fold rows to ``results/selection_folds_<challenge>.json``) and prints the agreement tables of
every row measured so far.

Usage::

    python benchmarks/bench_selection.py --challenge embedded --arms gru,gru-fast,lstm,ln,dendplrnn-cell
    python benchmarks/bench_selection.py --challenge qsnmc2007a --heldout 0.2 --folds time:3,stimulus:4
    python benchmarks/bench_selection.py --table
"""
from __future__ import annotations

import argparse
import fcntl
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_rnn_ablation import ARMS  # noqa: E402  (the ablation's arms; only the gru's are used here)

from qsnmc import challenge_dir, load_challenge  # noqa: E402
from qsnmc.settings import parse_overrides  # noqa: E402
from nested_gru import FoldedGRUModel, ProbedGRUModel  # noqa: E402
from selection_rules import (RULES, ScoredCheckpoint, agreement, nested_split, picked,  # noqa: E402
                             rank_agreement, stimulus_folds, time_folds)

FOLDS = {"time": time_folds, "stimulus": stimulus_folds}  # --folds KIND:K

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


def run_folds(challenge: str, arm: str, seed: int, folds: str, budget: float, probe: float) -> dict:
    """One setting scored by ``folds`` (``KIND:K``) of the inner part, each fold's gru at ``budget / K``."""
    kind, k = folds.split(":")
    train = load_challenge(challenge_dir(challenge)).training_data()  # training windows only
    inner = nested_split(train, probe).inner  # the probe is never passed on
    params = parse_overrides(ARMS[arm][1])
    t, fold_p, labels, scored, per_stimulus = time.perf_counter(), [], [], [], []
    for fold in FOLDS[kind](inner, int(k)):
        held_out = FoldedGRUModel(fold, seed=seed, budget=budget / int(k), **params).fit()["held_out"]
        fold_p.append(held_out["performance"])
        labels.append(fold.label)
        scored.append(any(v["included"] for v in held_out["per_stimulus"].values()))
        per_stimulus.append(held_out["per_stimulus"])
    return {"challenge": challenge, "arm": arm, "seed": seed, "folds": folds, "budget": budget, "probe": probe,
            "params": ARMS[arm][1], "fit_s": time.perf_counter() - t, "fold_p": fold_p, "fold_labels": labels,
            "fold_scored": scored, "fold_per_stimulus": per_stimulus}


def fold_score(row: dict) -> float:
    """A setting's score under a fold rule: mean P over the folds that score (a fold whose held-out
    stimuli are all under the R floor has no P: its figure is raw Gamma, on another scale)."""
    return float(np.mean([p for p, ok in zip(row["fold_p"], row["fold_scored"]) if ok]))


def load_rows(kind: str = "selection") -> list[dict]:
    """Every probed run (``selection``) or fold-scored setting (``selection_folds``) measured."""
    return [r for p in sorted(RESULTS.glob(f"{kind}_*.json")) for r in json.loads(p.read_text())
            if kind == "selection_folds" or not p.name.startswith("selection_folds_")]


def settings_markdown(rows: list[dict], fold_rows: list[dict]) -> str:
    """How each settings rule ranks the runs (arm, seed) against the probe P of the entry's own fit,
    on the runs every rule of the challenge has, and the probe P of the arm each rule picks per seed."""
    lines = ["| challenge | rule (training cost) | rho, runs | probe P of the arm picked per seed % | "
             "picked per seed | runs |", "|---|---|---|---|---|---|"]
    for challenge in sorted({r["challenge"] for r in fold_rows}):
        entry = {(r["arm"], r["seed"]): picked([ScoredCheckpoint(**c) for c in r["checkpoints"]], "held-out P")
                 for r in rows if r["challenge"] == challenge and r["heldout"] == 0.2 and r["budget"] == 1.0}
        scores: dict[str, dict[tuple, float]] = {
            "held-out P, last 0.2 (one fit)": {k: c.held_out_p for k, c in entry.items()},
            "held-out cross-entropy, last 0.2 (one fit)": {k: -c.held_out_bce for k, c in entry.items()}}
        for r in fold_rows:
            if r["challenge"] == challenge:
                kind, k = r["folds"].split(":")
                scores.setdefault(f"mean held-out P, {k} {kind} folds ({k} fits at 1/{k})",
                                  {})[(r["arm"], r["seed"])] = fold_score(r)
        runs = sorted(set.intersection(*(set(v) for v in scores.values())))
        seeds = sorted({s for _, s in runs})
        for rule, sc in scores.items():
            rho = rank_agreement([sc[k] for k in runs], [entry[k].probe_p for k in runs])
            picks = [max((k for k in runs if k[1] == s), key=lambda k: sc[k]) for s in seeds]
            kept = np.mean([entry[k].probe_p for k in picks]) if picks else float("nan")
            lines.append(f"| {challenge} | {rule} | {rho:.2f} | {100 * kept:.1f} | "
                         f"{', '.join(a for a, _ in picks)} | {len(runs)} |")
    return "\n".join(lines)


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
    ap.add_argument("--folds", default="", help="settings rules by folds instead of probed runs: KIND:K, "
                    "comma-separated (time:3, stimulus:4)")
    ap.add_argument("--shard", default="0/1",
                    help="with --folds, I/N: run every N-th job from the I-th (processes side by side)")
    ap.add_argument("--table", action="store_true", help="print the table of every row measured, run nothing")
    args = ap.parse_args()
    if args.table:
        print(markdown(load_rows()))
        print()
        print(settings_markdown(load_rows(), load_rows("selection_folds")))
        return
    arms = args.arms.split(",")
    if set(arms) - set(GRU_ARMS):
        ap.error(f"unknown arm(s) {sorted(set(arms) - set(GRU_ARMS))}; choose from {', '.join(GRU_ARMS)}")
    fractions = [float(f) for f in args.heldout.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    try:
        shard, n_shards = (int(x) for x in args.shard.split("/"))
        if not 0 <= shard < n_shards:
            raise ValueError
    except ValueError:
        ap.error(f"--shard takes I/N with 0 <= I < N, got {args.shard!r}")
    if args.folds:
        specs = args.folds.split(",")
        for spec in specs:
            if spec.split(":")[0] not in FOLDS or not spec.split(":")[-1].isdigit():
                ap.error(f"--folds takes KIND:K with KIND in {sorted(FOLDS)}, got {spec!r}")
        jobs = [(c, spec, seed, arm) for c in args.challenge or ["embedded"] for spec in specs for seed in seeds
                for arm in arms][shard::n_shards]
        for challenge, spec, seed, arm in jobs:
            row = run_folds(challenge, arm, seed, spec, args.budget, args.probe)
            out = RESULTS / f"selection_folds_{challenge}.json"
            lock_path = Path(tempfile.gettempdir()) / "qsnmc_selection_folds.lock"  # shards append to one file
            with open(lock_path, "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                old = json.loads(out.read_text()) if out.exists() else []
                same = ("arm", "seed", "folds", "budget", "probe")
                out.write_text(json.dumps([r for r in old if any(r[k] != row[k] for k in same)] + [row], indent=1))
            print(f"{challenge} {arm} seed {seed} {spec}: {row['fit_s']:.0f} s, fold P {row['fold_p']}", flush=True)
        print(settings_markdown(load_rows(), load_rows("selection_folds")))
        return
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
