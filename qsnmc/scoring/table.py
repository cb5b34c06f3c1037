"""The ranking table: rows from model records, ranked, with the competition's verdict."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
from tabulate import tabulate

from qsnmc.scoring.metrics import decide_winner


def ranking_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the table and ``--json``: scored models by descending P, then failed ones.

    Each row: rank (None if failed), model, source, status, gamma (mean raw Gamma),
    performance (P = Gamma/R, fraction), error (bootstrap, fraction), verdict, fit_s,
    predict_s, cached, sandboxed, reason, and spike_counts: per test stimulus, the mean
    predicted and recorded spike counts per repetition.
    """
    verdicts = decide_winner(
        {r["model"]: (r["performance"], r["error"]) for r in records if r.get("status") == "ok"}
    )
    ok = sorted((r for r in records if r.get("status") == "ok"), key=lambda r: -r["performance"])
    bad = sorted((r for r in records if r.get("status") != "ok"), key=lambda r: r["model"])
    rows = []
    for rank, r in enumerate(ok + bad, start=1):
        good = r.get("status") == "ok"
        rows.append(
            {
                "rank": rank if good else None,
                "model": r["model"],
                "source": r.get("source", ""),
                "status": r.get("status", "failed"),
                "gamma": r.get("gamma"),
                "performance": r.get("performance"),
                "error": r.get("error"),
                "verdict": verdicts.get(r["model"], "") if good else "failed",
                "fit_s": r.get("fit_s"),
                "predict_s": r.get("predict_s"),
                "cached": bool(r.get("cached")),
                "sandboxed": r.get("sandboxed"),
                "reason": r.get("reason", ""),
                "spike_counts": {
                    sc["stimulus"]: {"predicted": sc["n_predicted"], "recorded": sc["n_recorded"]}
                    for sc in (r.get("scores") or []) if sc.get("n_predicted") is not None
                },
            }
        )
    return rows


def count_ratios(row: dict[str, Any]) -> str:
    """Predicted / recorded spike count per test stimulus, e.g. ``00 1.45× · 04 0.98×`` (``0.95×`` for one)."""
    counts = row.get("spike_counts") or {}
    def ratio(c: dict[str, float]) -> str:
        return f"{c['predicted'] / c['recorded']:.2f}×" if c["recorded"] else ("1×" if not c["predicted"] else "∞")
    if len(counts) == 1:
        return ratio(next(iter(counts.values())))
    return " · ".join(f"{name} {ratio(c)}" for name, c in counts.items())


def _num(x: Any, fmt: str) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def format_table(rows: list[dict[str, Any]], header: str = "") -> str:
    """The table as text: Gamma, P = Gamma/R in % of R, its bootstrap error, rank, verdict, and
    the predicted / recorded spike count per test stimulus."""
    display = []
    for r in rows:
        notes = []
        if r["status"] != "ok":
            notes.append(r["reason"].replace("\n", " ")[:160])
        if r["cached"]:
            notes.append("cached")
        if r["sandboxed"] is False:
            notes.append("NOT sandboxed")
        display.append(
            {
                "rank": r["rank"] if r["rank"] is not None else "-",
                "model": r["model"],
                "Γ": _num(r["gamma"], ".3f"),
                "Γ/R %": _num(None if r["performance"] is None else 100 * r["performance"], ".1f"),
                "± err %": _num(None if r["error"] is None else 100 * r["error"], ".1f"),
                "verdict": r["verdict"],
                "spikes pred/rec": count_ratios(r),
                "fit s": _num(r["fit_s"], ".1f"),
                "predict s": _num(r["predict_s"], ".2f"),
                "notes": "; ".join(notes),
            }
        )
    frame = pd.DataFrame(display)
    text = tabulate(frame, headers="keys", tablefmt="github", showindex=False) if display else "(no models)"
    return (header + "\n" if header else "") + text + "\n" + verdict_note(rows)


def verdict_note(rows: list[dict[str, Any]]) -> str:
    """One sentence saying who won and how, in the competition's terms."""
    winners = [r["model"] for r in rows if r["verdict"] == "significant win"]
    shared = [r["model"] for r in rows if r["verdict"] == "shared win"]
    n_ok = sum(r["status"] == "ok" for r in rows)
    if winners:
        return f"Winner: {winners[0]} (P - Err above every other entry's P; {n_ok} entries)."
    if shared:
        why = "fewer than 3 entries" if n_ok < 3 else "no entry is one error above all others"
        return f"No significant winner ({why}): the win is shared by {', '.join(shared)}."
    return "No entry could be scored."


def challenge_header(run_info: dict) -> str:
    """The lines above a ranking table: challenge, windows, R, seed, budget."""
    rel = ", ".join(f"{k}: {v:.3f}" for k, v in run_info.get("reliability", {}).items())
    def window(w: list | None) -> str:
        return f"{w[0]:g}-{w[1]:g} s" if w else "none"

    stimuli = run_info.get("stimuli", [])
    trained = [s["name"] for s in stimuli if s.get("train_window_s")]
    wins = "; ".join(
        f"{s['name']}: test {window(s['test_window_s'])}"
        + (f" (trained on {window(s['train_window_s'])})" if s.get("train_window_s") else "")
        for s in stimuli if s.get("test_window_s")
    )
    if any(not s.get("test_window_s") for s in stimuli):
        wins += f"; training stimuli: {', '.join(trained)}"
    why_not = run_info.get("training_only") or {}
    if why_not:
        wins += "; training only: " + ", ".join(f"{k} ({v})" for k, v in why_not.items())
    return (
        f"Challenge {run_info['challenge']!r} (Δ = {1e3 * run_info['delta_s']:g} ms; {wins}; R = {rel})\n"
        f"Run started {run_info.get('started', '?')}, seed {run_info['settings']['seed']}, "
        f"budget {run_info['settings']['budget']:g}"
    )
