"""The recurrent entries over many seeds: how far one seed's row is from the mean, and whether the
verdict holds. Reads the run folders of ``qsnmc run MODELS --seeds 0-9 --challenge NAME``.

Per model and seed: test P ± its error, held-out P (the last 20 % of the training window, on
which the checkpoint was chosen), the kept step of each member, the rollbacks after a held-out
collapse, fit time; per model: mean, SD over seeds, the largest distance of a seed from the
mean. Writes ``benchmarks/results/rnn_seeds_<label>.json`` and prints a Markdown table.

Usage::

    qsnmc run gru dendplrnn --challenge embedded --seeds 0-9 --jobs 2 --runs-dir /tmp/seeds
    python benchmarks/bench_rnn_seeds.py /tmp/seeds/<run> --label embedded

Run it with the ``qsnmc run`` of the checkout measured: the fits are the harness's own (portable
torch kernels, one thread per job), so seed k's row is the row a user gets with ``--seed k``.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def seed_rows(run: Path, model: str) -> list[dict]:
    """One row per seed folder of ``model`` in ``run``: test and held-out P, kept steps, rollbacks."""
    rows = []
    for rec_path in sorted((run / model).glob("seed-*/record.json"), key=lambda p: int(p.parent.name[5:])):
        rec = json.loads(rec_path.read_text())
        fit = rec.get("fit_record") or {}
        details = fit.get("details", {})
        members = details.get("members", [])
        rows.append({
            "seed": rec["seed"], "status": rec["status"], "P": rec.get("performance"), "error": rec.get("error"),
            "held_out_P": (fit.get("held_out") or {}).get("performance"),
            "kept_steps": [m.get("best_step", m.get("best_iteration")) for m in members],
            "rollbacks": sum(len(m.get("rollbacks", [])) for m in members),
            "fit_s": rec.get("fit_s"), "cpu_capability": (rec.get("numerics", {}).get("torch") or {}).get(
                "cpu_capability")})
    return rows


def summary(rows: list[dict]) -> dict:
    """Mean, SD (n - 1) and largest distance from the mean of the scored seeds' P; fit times."""
    p = [r["P"] for r in rows if r["status"] == "ok" and r["P"] is not None]
    if not p:
        return {"n": 0}
    mean = statistics.fmean(p)
    return {"n": len(p), "mean_P": mean, "sd_P": statistics.stdev(p) if len(p) > 1 else 0.0,
            "max_distance_from_mean": max(abs(x - mean) for x in p), "min_P": min(p), "max_P": max(p),
            "fit_s_max": max(r["fit_s"] or 0.0 for r in rows), "fit_s_mean": statistics.fmean(
                r["fit_s"] or 0.0 for r in rows), "rollbacks": sum(r["rollbacks"] for r in rows)}


def markdown(label: str, per_model: dict[str, dict]) -> str:
    lines = [f"| {label} | seed | P % ± err | held-out P | kept step(s) | rollbacks | fit s |",
             "|---|---|---|---|---|---|---|"]
    for model, d in per_model.items():
        for r in d["seeds"]:
            p = f"{100 * r['P']:.1f} ± {100 * r['error']:.1f}" if r["status"] == "ok" else r["status"]
            ho = f"{r['held_out_P']:.3f}" if r["held_out_P"] is not None else "-"
            lines.append(f"| {model} | {r['seed']} | {p} | {ho} | {r['kept_steps']} | {r['rollbacks']} | "
                         f"{r['fit_s'] or 0:.0f} |")
        s = d["summary"]
        if s.get("n"):
            lines.append(f"| **{model}** | mean of {s['n']} | **{100 * s['mean_P']:.1f}**, SD {100 * s['sd_P']:.1f} "
                         f"| | | {s['rollbacks']} | max {s['fit_s_max']:.0f} |")
            lines.append(f"| | | largest distance from the mean {100 * s['max_distance_from_mean']:.1f} points "
                         f"(range {100 * s['min_P']:.1f}-{100 * s['max_P']:.1f}) | | | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a run folder of qsnmc run --seeds")
    ap.add_argument("--label", required=True, help="the challenge's label in the results file name")
    ap.add_argument("--models", nargs="+", default=["gru", "dendplrnn"])
    args = ap.parse_args()
    per_model = {}
    for model in args.models:
        rows = seed_rows(args.run, model)
        if rows:
            per_model[model] = {"seeds": rows, "summary": summary(rows)}
    out = ROOT / "benchmarks" / "results" / f"rnn_seeds_{args.label}.json"
    run_info = json.loads((args.run / "run.json").read_text())
    out.write_text(json.dumps({"run": str(args.run), "challenge": run_info.get("challenge"),
                               "numerics": run_info.get("numerics"), "models": per_model}, indent=1) + "\n")
    print(markdown(args.label, per_model))
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
