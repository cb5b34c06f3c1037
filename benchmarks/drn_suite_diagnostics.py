"""Where a model fails on a suite's cells: held-out figures on the training sweep beside the test's.

Reads a suite folder written by ``qsnmc run --all --suite drn --seeds 0-2`` and prints, per model
and cell (means over the scored seeds): test P (%), the held-out Γ of the fit record (the last
``heldout_fraction`` of the one training sweep, against its one recording: the figure each
built-in chose on), the predicted / recorded spike count there and on the test, and Γ against the
first and the last three test repetitions (the cell drifts over its ten repetitions). A model
whose held-out Γ is already low failed on the training data itself, not on the test stimulus.

    python benchmarks/drn_suite_diagnostics.py runs/<suite folder> [--json results/drn_suite_diagnostics.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def rows(suite: Path) -> list[dict]:
    """One row per (model, cell): means over the seeds' records."""
    per: dict[tuple[str, str], list[dict]] = {}
    for rec in sorted(suite.glob("*/*/seed-*/record.json")):
        cell, model = rec.parts[-4], rec.parts[-3]
        d = json.loads(rec.read_text())
        if d.get("status") != "ok":
            continue
        held = ((d.get("fit_record") or {}).get("held_out") or {}).get("per_stimulus", {})
        h = next(iter(held.values()), {})
        s = d["scores"][0]
        g = np.asarray(s["gammas"], float)
        per.setdefault((model, cell), []).append({
            "test_P_pct": 100 * d["performance"], "heldout_gamma": h.get("gamma"),
            "heldout_count_ratio": h.get("count_ratio"), "test_count_ratio": s["n_predicted"] / s["n_recorded"],
            "test_gamma_reps_1_3": float(g[:3].mean()), "test_gamma_reps_8_10": float(g[-3:].mean()),
            "fit_s": d["fit_s"]})
    out = []
    for (model, cell), xs in sorted(per.items()):
        row = {"model": model, "cell": cell, "seeds": len(xs)}
        for k in xs[0]:
            v = [x[k] for x in xs if x[k] is not None]
            row[k] = float(np.mean(v)) if v else None
        out.append(row)
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "  -  " if value is None else format(value, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    table = rows(args.suite)
    for r in table:
        print(f"{r['model']:18s} {r['cell']} P {r['test_P_pct']:6.1f} | held-out Γ {_fmt(r['heldout_gamma'], '.3f')} "
              f"count {_fmt(r['heldout_count_ratio'], '.2f')}x | test count {r['test_count_ratio']:.2f}x "
              f"Γ reps 1-3 {r['test_gamma_reps_1_3']:.3f} reps 8-10 {r['test_gamma_reps_8_10']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
