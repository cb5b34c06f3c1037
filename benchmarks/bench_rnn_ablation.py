"""The recurrent entries' ablation: which part of the gru carries its lead over the fitted models.

Every arm is a ``qsnmc run`` of the gru (or the dendplrnn) with settings changed through
``--param``, so it is fitted, predicted and scored exactly as a table row is (sandboxed worker,
official scoring, seed-aware verdict). Arms (each against the default gru: a GRU cell, the
current plus 20 ms - 20 s filtrates, the spike hazard as target, the shared recipe):

- ``gru``: the default;
- ``lstm``: another recurrent cell;
- ``ln``: no recurrence: 16 causal 128-bin filters of the same inputs and a pointwise nonlinearity;
- ``ln-eval20``: the same, checkpoints every 20 steps (it over-fits the embedded cell within 100 steps);
- ``gru-fast``: the GRU with the fast filtrates only (20, 100, 500 ms);
- ``dendplrnn-cell``: the dendPLRNN as the recurrent cell (64 latent units, 8 bases), all else the gru's;
- ``dendplrnn-cell-stf``: the same with the voltage as an auxiliary target (weight 1) and sparse teacher
  forcing of its voltage unit every 25 bins: the dendPLRNN entry's method on the gru's recipe;
- ``gru-voltage``: the gru with the voltage as an auxiliary target (weight 1, a linear voltage readout);
- ``dendplrnn``: the dendPLRNN entry (its own recipe: voltage and hazard, sparse teacher forcing,
  the fast filtrates only);
- ``dendplrnn-slow``: the dendPLRNN with the gru's inputs (the 5 and 20 s filtrates added).

Test windows are read here as in any table: every default was fixed before this ran (on held-out
training data). Writes ``results/rnn_ablation.json`` (one row per arm and cell; seeds run later are
added to an arm's earlier seeds) and prints a Markdown table of the mean P over seeds, the seed
SD, each seed's P and each fit's own held-out P (training data).

Usage::

    python benchmarks/bench_rnn_ablation.py --challenge embedded --seeds 0-2 --arms ln,gru-fast
    python benchmarks/bench_rnn_ablation.py --table   # every arm measured so far
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from qsnmc.settings import parse_overrides

ROOT = Path(__file__).resolve().parents[1]
#: arm -> (model, --param settings)
ARMS = {
    "gru": ("gru", []),
    "lstm": ("gru", ["cell=lstm"]),
    "ln": ("gru", ["cell=ln"]),
    "ln-eval20": ("gru", ["cell=ln", "eval_every=20"]),
    "gru-fast": ("gru", ["input_taus_s=[0.02,0.1,0.5]"]),
    "dendplrnn-cell": ("gru", ["cell=dendplrnn"]),
    "dendplrnn-cell-stf": ("gru", ["cell=dendplrnn", "voltage_weight=1.0", "teacher_forcing_bins=25"]),
    "gru-voltage": ("gru", ["voltage_weight=1.0"]),
    "dendplrnn": ("dendplrnn", []),
    "dendplrnn-slow": ("dendplrnn", ["input_taus_s=[0.02,0.1,0.5,5.0,20.0]"]),
}


def run_arm(arm: str, challenge: str, seeds: str, runs_dir: str, jobs: int) -> dict:
    """One arm's ``qsnmc run``: its table row (mean over seeds, SD, each seed) as ``--json`` writes it."""
    model, params = ARMS[arm]
    before = set(Path(runs_dir).glob("2*")) if Path(runs_dir).is_dir() else set()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cli = "import sys; from qsnmc.cli.main import main; sys.exit(main())"  # this checkout's qsnmc (cwd below)
        cmd = [sys.executable, "-c", cli, "run", model, "--challenge", challenge, "--seeds", seeds, "--quiet",
               "--runs-dir", runs_dir, "--jobs", str(jobs), "--json", str(out),
               *[a for p in params for a in ("--param", p)]]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)  # this checkout's code
        if not out.exists():
            return {"arm": arm, "challenge": challenge, "status": "failed", "reason": proc.stderr.strip()[-500:]}
        row = json.loads(out.read_text())[0]
    heldout = _held_out(sorted(set(Path(runs_dir).glob("2*")) - before), model, challenge, params)
    for s in row.get("seeds") or []:
        s["held_out"] = heldout.get(s["seed"])
    return {"arm": arm, "challenge": challenge, "params": params, **{k: row.get(k) for k in (
        "status", "performance", "error", "seed_sd", "n_seeds", "n_scored", "fit_s", "reason")},
        "seeds": [{"seed": s["seed"], "performance": s.get("performance"), "held_out": s.get("held_out")}
                  for s in row.get("seeds") or []]}


def _held_out(run_dirs: list[Path], model: str, challenge: str, params: list[str]) -> dict[int, float]:
    """seed -> the fit's own held-out Gamma/R (training data), from the fit records of this arm's run
    (records whose settings are not the arm's, e.g. another arm's run started meanwhile, are skipped)."""
    wanted = parse_overrides(params)
    out = {}
    for d in run_dirs:
        for rec_path in [*(d / model).glob("record.json"), *(d / model).glob("seed-*/record.json")]:
            rec = json.loads(rec_path.read_text())
            fit = rec.get("fit_record") or {}
            held = fit.get("held_out") or {}
            settings = fit.get("settings") or {}
            if any(settings.get(k) != v for k, v in wanted.items()):
                continue
            if rec.get("challenge") == challenge and held.get("performance") is not None:
                out[int(rec["seed"])] = float(held["performance"])
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| challenge | arm | P % (mean) | seed SD % | P per seed % | held-out P per seed % | fit s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(f"| {r['challenge']} | {r['arm']} | failed | | {r.get('reason', '')} | | |")
            continue
        each = " / ".join("failed" if s["performance"] is None else f"{100 * s['performance']:.1f}"
                          for s in r["seeds"])
        held = " / ".join("-" if s.get("held_out") is None else f"{100 * s['held_out']:.1f}" for s in r["seeds"])
        lines.append(f"| {r['challenge']} | {r['arm']} | {100 * r['performance']:.1f} | {100 * r['seed_sd']:.1f} | "
                     f"{each} | {held} | {'' if r.get('fit_s') is None else format(r['fit_s'], '.0f')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--challenge", action="append", default=[], help="repeatable (default: embedded)")
    ap.add_argument("--seeds", default="0-2")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"), help="shares the run cache with `qsnmc run`")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rnn_ablation.json"))
    ap.add_argument("--table", action="store_true", help="print the table of every row in --out, run nothing")
    args = ap.parse_args()
    arms = args.arms.split(",")
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        ap.error(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.exists() else []
    if args.table:
        print(markdown(old))
        return
    rows = [run_arm(a, c, args.seeds, args.runs_dir, args.jobs) for c in args.challenge or ["embedded"] for a in arms]
    by_key = {(r["arm"], r["challenge"]): r for r in old}
    for r in rows:
        by_key[(r["arm"], r["challenge"])] = merged(by_key.get((r["arm"], r["challenge"])), r)
    out.write_text(json.dumps(list(by_key.values()), indent=1))
    print(markdown(rows))


def merged(old: dict | None, new: dict) -> dict:
    """An arm's row with ``new``'s seeds added to ``old``'s (a seed run again replaces its earlier
    figure): mean P and seed SD (ddof 1) over them; the combined error is only ``qsnmc run``'s."""
    if old is None or "ok" not in (old.get("status"), new.get("status")) or old.get("params") != new.get("params"):
        return new
    seeds = {s["seed"]: s for s in [*(old.get("seeds") or []), *(new.get("seeds") or [])]}
    seeds = [seeds[k] for k in sorted(seeds)]
    ps = np.array([s["performance"] for s in seeds if s["performance"] is not None])
    if {s["seed"] for s in seeds} == {s["seed"] for s in new["seeds"]}:
        return new
    fit_s = [r["fit_s"] for r in (old, new) if r.get("fit_s") is not None]
    return {**new, "status": "ok" if ps.size else "failed", "performance": float(ps.mean()) if ps.size else None,
            "seed_sd": float(ps.std(ddof=1)) if ps.size > 1 else 0.0, "error": None, "n_seeds": len(seeds),
            "n_scored": int(ps.size), "fit_s": float(np.mean(fit_s)) if fit_s else None, "seeds": seeds}


if __name__ == "__main__":
    main()
