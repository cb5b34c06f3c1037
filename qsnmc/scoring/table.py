"""The ranking table: rows from model records, ranked, with the competition's verdict."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from qsnmc.scoring.seeds import decide_winner_over_seeds, summarise_seeds


def ranking_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the table and ``--json``, one per model: scored models by descending P, then failed ones.

    ``records`` are job records: one per model in a single-seed run, one per (model, seed) in a
    run of several seeds; a model's seeds are summarised by
    :func:`qsnmc.scoring.seeds.summarise_seeds` and ranked by :func:`decide_winner_over_seeds`.

    Each row: rank (None if failed), model, source, status ("ok" when at least one seed was
    scored), gamma (mean raw Gamma), performance (P = Gamma/R, fraction; the mean over scored
    seeds), error (the combined error Err_c; the bootstrap error for one seed), bootstrap_error
    (root mean square of the seeds' bootstrap errors), seed_sd (sample SD of P over the scored
    seeds, 0 for one), n_seeds and n_scored (seeds run and scored), seeds (per seed: seed,
    status, gamma, performance, error, reason, cached), verdict, fit_s and predict_s (mean per
    scored seed), cached (every seed reused), sandboxed, reason (the failed seeds' reasons), and
    spike_counts: per test stimulus, the mean predicted and recorded spike counts per repetition.
    """
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_model.setdefault(r["model"], []).append(r)
    groups = {m: sorted(rs, key=lambda r: (r.get("seed") is None, r.get("seed") or 0)) for m, rs in by_model.items()}
    scored = {m: [(r["performance"], r["error"]) for r in rs if r.get("status") == "ok"] for m, rs in groups.items()}
    verdicts = decide_winner_over_seeds(scored, n_run={m: len(rs) for m, rs in groups.items()})
    rows = [_model_row(m, rs, verdicts.get(m, "")) for m, rs in groups.items()]
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: -r["performance"])
    bad = sorted((r for r in rows if r["status"] != "ok"), key=lambda r: r["model"])
    for rank, row in enumerate(ok, start=1):
        row["rank"] = rank
    _word_verdicts(ok)
    _withhold_verdicts(ok)
    return ok + bad


def _mean(values: list[float | None]) -> float | None:
    """Mean of the known values (the value itself for one), None for none."""
    known = [v for v in values if v is not None]
    return None if not known else known[0] if len(known) == 1 else float(np.mean(known))


def _model_row(model: str, seeds: list[dict[str, Any]], verdict: str) -> dict[str, Any]:
    """One model's row from its job records (one per seed)."""
    good = [r for r in seeds if r.get("status") == "ok"]
    failed = [r for r in seeds if r.get("status") != "ok"]
    several = len(seeds) > 1
    if good:
        summary = summarise_seeds([r["performance"] for r in good], [r["error"] for r in good])
        performance, error, boot, sd = summary.performance, summary.error, summary.bootstrap_error, summary.seed_sd
    else:
        performance = error = boot = sd = None
    timed = good if several and good else seeds
    counts: dict[str, dict[str, list[float]]] = {}
    for r in good:
        for sc in r.get("scores") or []:
            if sc.get("n_predicted") is not None:
                c = counts.setdefault(sc["stimulus"], {"predicted": [], "recorded": []})
                c["predicted"].append(sc["n_predicted"])
                c["recorded"].append(sc["n_recorded"])
    sandboxed = [r.get("sandboxed") for r in seeds]
    reasons = [f"seed {r.get('seed')}: {r.get('reason', '')}" if several else r.get("reason", "") for r in failed]
    if several and not good:
        reasons.insert(0, f"all {len(seeds)} seeds failed")
    first = seeds[0]
    return {
        "rank": None,
        "model": model,
        "source": first.get("source", ""),
        "status": "ok" if good else first.get("status", "failed"),
        "gamma": _mean([r.get("gamma") for r in good]),
        "performance": performance,
        "error": error,
        "bootstrap_error": boot,
        "seed_sd": sd,
        "n_seeds": len(seeds),
        "n_scored": len(good),
        "seeds": [{"seed": r.get("seed"), "status": r.get("status", "failed"), "gamma": r.get("gamma"),
                   "performance": r.get("performance"), "error": r.get("error"), "reason": r.get("reason", ""),
                   "cached": bool(r.get("cached"))} for r in seeds],
        "verdict": verdict if good else "failed",
        "cannot_win": "",
        "fit_s": _mean([r.get("fit_s") for r in timed]),
        "predict_s": _mean([r.get("predict_s") for r in timed]),
        "cached": all(r.get("cached") for r in seeds),
        "sandboxed": False if False in sandboxed else (True if all(sandboxed) else None),
        "reason": "; ".join(reasons),
        "spike_counts": {name: {k: _mean(v) for k, v in c.items()} for name, c in counts.items()},
    }


#: the verdict cell where the competition's words would read wrong
ONLY_ENTRY = "only entry"
AHEAD = "ahead, not significant"


def _word_verdicts(ok: list[dict[str, Any]]) -> None:
    """Reword verdicts that the rule's words do not fit: a lone entry ranks against nobody, and
    a "shared win" held by one entry is a lead the rule cannot call (two entries, or a leader
    scored on one seed of several)."""
    shared = [r for r in ok if r["verdict"] == "shared win"]
    if len(ok) == 1:
        ok[0]["verdict"] = ONLY_ENTRY
    elif len(shared) == 1:
        shared[0]["verdict"] = AHEAD


def cannot_win(row: dict[str, Any]) -> str:
    """Why a scored row may not be named the winner, or "".

    - *empty prediction*: it predicted no spike at all (the mean predicted count is 0 on every
      test stimulus);
    - *at chance*: its P is not above 0 by more than its error, P - Err <= 0 (Err_c over seeds):
      a prediction no better than chance coincidences.
    """
    counts = row.get("spike_counts") or {}
    if counts and all(not c.get("predicted") for c in counts.values()):
        return "empty prediction: no spike predicted"
    p, err = row.get("performance"), row.get("error") or 0.0
    if p is not None and p - err <= 0:
        return f"at chance: P {100 * p:.1f} % is not above 0 by more than its error {100 * err:.1f} %"
    return ""


def _withhold_verdicts(ok: list[dict[str, Any]]) -> None:
    """The win rule is applied to every scored entry (``ok``, best first); then an entry that
    :func:`cannot_win` loses its verdict ("significant win", "shared win", "ahead, ...", "only
    entry"), and no other entry is promoted in its place. When the best entry cannot win, no entry
    keeps a win: every other is below it or within its error of it."""
    for row in ok:
        row["cannot_win"] = cannot_win(row)
        if row["cannot_win"] or (ok and ok[0]["cannot_win"]):
            row["verdict"] = ""


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


def _pct(x: float | None) -> str:
    return _num(None if x is None else 100 * x, ".1f")


def several_seeds(rows: list[dict[str, Any]]) -> bool:
    """Whether any row is over more than one seed (the table then shows the seed columns)."""
    return any(r.get("n_seeds", 1) > 1 for r in rows)


def format_table(rows: list[dict[str, Any]], header: str = "") -> str:
    """The table as text: Gamma, P = Gamma/R in % of R, its error, rank, verdict, and the
    predicted / recorded spike count per test stimulus. Over several seeds, P is the mean over
    the scored seeds, the error the combined Err_c, and the columns ``seed SD %``, ``seeds``
    (scored / run) and ``P per seed %`` are added; a failed seed's reason is in the notes."""
    several = several_seeds(rows)
    display = []
    for r in rows:
        notes = []
        if r["status"] != "ok" or (several and r["n_scored"] < r["n_seeds"]):
            notes.append(r["reason"].replace("\n", " ")[:160 * max(1, r["n_seeds"] - r["n_scored"])])
        if r["cached"]:
            notes.append("cached")
        elif several and any(s["cached"] for s in r["seeds"]):
            notes.append(f"{sum(s['cached'] for s in r['seeds'])}/{r['n_seeds']} cached")
        if r.get("cannot_win"):
            notes.append(f"cannot win: {r['cannot_win']}")
        if r["sandboxed"] is False:
            notes.append("NOT sandboxed")
        row = {
            "rank": r["rank"] if r["rank"] is not None else "-",
            "model": r["model"],
            "Γ": _num(r["gamma"], ".3f"),
            "Γ/R %": _pct(r["performance"]),
            "± err %": _pct(r["error"]),
        }
        if several:
            row.update({
                "seed SD %": _pct(r["seed_sd"]),
                "seeds": f"{r['n_scored']}/{r['n_seeds']}",
                "P per seed %": " · ".join(_pct(s["performance"]) if s["status"] == "ok" else "failed"
                                          for s in r["seeds"]),
            })
        row.update({
            "verdict": r["verdict"],
            "spikes pred/rec": count_ratios(r),
            "fit s": _num(r["fit_s"], ".1f"),
            "predict s": _num(r["predict_s"], ".2f"),
            "notes": "; ".join(notes),
        })
        display.append(row)
    frame = pd.DataFrame(display)
    text = tabulate(frame, headers="keys", tablefmt="github", showindex=False) if display else "(no models)"
    return (header + "\n" if header else "") + text + "\n" + verdict_note(rows)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def verdict_note(rows: list[dict[str, Any]]) -> str:
    """One sentence saying who won and how, in the competition's terms (over seeds: the seed
    means and the combined error Err_c), worded for one, two or more scored entries."""
    ok = [r for r in rows if r["status"] == "ok"]
    several = several_seeds(rows)
    if not ok:
        return "No entry could be scored."
    if ok[0].get("cannot_win"):
        return (f"No winner: the best entry, {ok[0]['model']}, cannot win ({ok[0]['cannot_win']}): an empty or "
                f"at-chance prediction is never named the winner.")
    if len(ok) == 1:
        return f"One entry ({ok[0]['model']}): no ranking verdict (the win rule needs at least 3 entries)."
    winners = [r["model"] for r in ok if r["verdict"] == "significant win"]
    if winners:
        if several:
            return (f"Winner: {winners[0]} (its mean P over seeds minus Err_c is above every other entry's "
                    f"mean P; {len(ok)} entries).")
        return f"Winner: {winners[0]} (P - Err above every other entry's P; {len(ok)} entries)."
    best, second = ok[0], ok[1]
    if len(ok) == 2:
        how = (f"{best['model']} is ahead of {second['model']} by more than its error"
               if best["verdict"] == AHEAD else
               f"{best['model']} and {second['model']} are within {best['model']}'s error of each other")
        return f"Two entries, so no significant winner (the win rule needs at least 3): {how}."
    shared = [r["model"] for r in ok if r["verdict"] == "shared win"]
    if not shared:
        return (f"No significant winner: {best['model']} leads by more than its error, but was scored on "
                f"{best['n_scored']} seed of {best['n_seeds']}, so its seed spread is unknown.")
    return (f"No significant winner (no entry is one error above all others): the win is shared by "
            f"{_and(shared)}.")


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
        + (_outside_line(run_info) if run_info.get("outside") else
           f"Run started {run_info.get('started', '?')}, {_seeds_label(run_info['settings'])}, "
           f"budget {run_info['settings']['budget']:g}")
    )


def _outside_line(run_info: dict) -> str:
    """The second header line of a run of spike times scored from files (``qsnmc score``): no seed, no budget."""
    return f"Scored {run_info.get('started', '?')}: spike times from {len(run_info['outside']['files'])} file(s)"


def _seeds_label(settings: dict) -> str:
    """``seed 0``, or ``seeds 0, 1, 2`` for a run of several seeds."""
    seeds = settings.get("seeds") or [settings["seed"]]
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
