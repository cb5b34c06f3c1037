"""``qsnmc report``: one self-contained HTML page (PNG figures embedded, and written beside it).

Figures (matplotlib, headless):
1. ``raster.png``: the competition's figure: the injected current over a stretch of the
   test window, the recorded repetitions as a raster, each model's predicted spikes beneath.
2. ``performance.png``: mean Gamma per model with its bootstrap error (Err x R), and the
   intrinsic reliability R as a line (Gamma/R = 100 % there).
3. ``per_repetition.png``: Gamma_i of each model for each recorded repetition.
4. ``training_curves.png``: lists of numbers that plugins record in their fit record under
   a key naming a curve (``loss_curve``, ``*_history``, ``*_per_generation``, ...).

The report process is a scoring process: it reads the hidden test spikes to draw them.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from qsnmc.challenges.store import Challenge, load_challenge
from qsnmc.challenges.datadir import challenge_dir
from qsnmc.harness.runner import load_prediction
from qsnmc.harness.runstore import RUN, load_records
from qsnmc.scoring.table import challenge_header, format_table, ranking_rows

#: fit-record keys whose numeric lists are drawn as training curves
CURVE_KEY = re.compile(r"curve|loss|history|per_generation|per_epoch|per_iteration|by_.*iteration", re.I)
#: at most this many predicted trains drawn per stochastic model
MAX_MODEL_ROWS = 3


class ReportError(RuntimeError):
    """A run that cannot be reported (no challenge to read, nothing scored)."""


def _challenge_of(info: dict[str, Any]) -> Challenge:
    path = info.get("challenge_path")
    sweep = info.get("sweep")
    name = sweep["of_challenge"] if sweep else info["challenge"]
    folder = Path(path) if path and Path(path).is_dir() else challenge_dir(name)
    challenge = load_challenge(folder)
    if sweep:
        from qsnmc.harness.sweep import heldout_challenges

        helds = heldout_challenges(challenge, sweep.get("split", "time"), sweep["holdout"], sweep.get("r_floor"))
        fold = sweep.get("fold")
        challenge = next((h for h in helds if h.manifest["fold"] == fold), helds[0]) if fold else helds[0]
    return challenge


def find_curves(record: Any, prefix: str = "") -> dict[str, list[float]]:
    """Numeric lists (3 values or more) under curve-like keys of a fit record, by dotted key."""
    out: dict[str, list[float]] = {}
    if isinstance(record, dict):
        for key, value in record.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                out.update(find_curves(value, name + "."))
            elif (CURVE_KEY.search(str(key)) and isinstance(value, list) and len(value) >= 3
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                out[name] = [float(v) for v in value]
    return out


def busiest_stretch(trains: list[np.ndarray], window_s: tuple[float, float], length_s: float = 2.0) -> float:
    """Start (s) of the ``length_s`` stretch of the window, on a 0.5 s grid, holding the most recorded spikes."""
    starts = np.arange(window_s[0], max(window_s[0], window_s[1] - length_s) + 1e-9, 0.5)
    spikes = np.concatenate([np.asarray(t, float) for t in trains]) if trains else np.zeros(0)
    counts = [np.count_nonzero((spikes >= t) & (spikes < t + length_s)) for t in starts]
    return float(starts[int(np.argmax(counts))])


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def raster_figure(challenge: Challenge, stimulus: str, predictions: dict[str, list[np.ndarray]],
                  t_from: float, t_to: float) -> bytes:
    """Current, recorded raster and each model's predicted spikes over ``[t_from, t_to]`` (s)."""
    import matplotlib.pyplot as plt

    stim = next(s for s in challenge.stimuli if s.name == stimulus)
    recorded = challenge.test_recordings(stimulus)
    rows: list[tuple[str, np.ndarray, str]] = [(f"rec {i + 1}", t, "black") for i, t in enumerate(recorded)]
    colours = plt.get_cmap("tab10").colors
    for j, (model, trains) in enumerate(predictions.items()):
        shown = trains[:MAX_MODEL_ROWS]
        for i, t in enumerate(shown):  # a stochastic entry's trains are each labelled as that entry
            rows.append((model if len(shown) == 1 else f"{model} #{i + 1}", t, colours[j % len(colours)]))
    fig, (ax_i, ax_r) = plt.subplots(2, 1, sharex=True, figsize=(10, 2.0 + 0.22 * len(rows)),
                                     gridspec_kw={"height_ratios": [1.2, max(2.0, 0.22 * len(rows))]})
    k0, k1 = int(t_from / stim.dt_s), int(math.ceil(t_to / stim.dt_s))
    t_axis = np.arange(k0, min(k1, stim.current_pA.size)) * stim.dt_s
    ax_i.plot(t_axis, stim.current_pA[k0:k0 + t_axis.size], lw=0.6, color="0.3")
    ax_i.set_ylabel("I (pA)")
    ax_i.set_title(f"{challenge.name}, stimulus {stimulus}: recorded (black) and predicted spikes")
    for y, (_, t, colour) in enumerate(rows):
        t = np.asarray(t)
        t = t[(t >= t_from) & (t <= t_to)]
        ax_r.vlines(t, len(rows) - y - 0.4, len(rows) - y + 0.4, color=colour, lw=1.0)
    ax_r.set_yticks(np.arange(len(rows), 0, -1), [r[0] for r in rows], fontsize=7)
    ax_r.set_ylim(0.3, len(rows) + 0.7)
    ax_r.set_xlim(t_from, t_to)
    ax_r.set_xlabel("time (s)")
    return _png(fig)


def performance_figure(records: list[dict[str, Any]], reliability: float) -> bytes:
    """Mean Gamma per model with bootstrap error bars (Err x R) and the R line."""
    import matplotlib.pyplot as plt

    ok = sorted((r for r in records if r.get("status") == "ok"), key=lambda r: -r["performance"])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(ok) + 2), 3.6))
    names = [r["model"] for r in ok]
    gammas = [r["performance"] * reliability for r in ok]
    errors = [r["error"] * reliability for r in ok]
    ax.bar(names, gammas, yerr=errors, capsize=4, color="tab:blue", alpha=0.8)
    ax.axhline(reliability, color="tab:red", ls="--", label=f"R = {reliability:.3f} (intrinsic reliability)")
    ax.axhline(0.0, color="black", lw=0.6)
    for x, r in enumerate(ok):
        ax.annotate(f"{100 * r['performance']:.1f} %", (x, r["performance"] * reliability), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
    ax.set_ylim(top=1.25 * max([reliability, *gammas]))
    ax.set_ylabel("Γ (mean over repetitions)")
    ax.set_title("Γ per model (bars: bootstrap error; labels: Γ/R)")
    ax.legend(loc="upper right", fontsize=8, framealpha=1.0)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return _png(fig)


def repetition_figure(records: list[dict[str, Any]]) -> bytes:
    """Gamma_i of each scored model for each repetition (first test stimulus)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 3.4))
    for r in sorted((r for r in records if r.get("status") == "ok"), key=lambda r: -r["performance"]):
        gammas = r.get("scores", [{}])[0].get("gammas", [])
        ax.plot(np.arange(1, len(gammas) + 1), gammas, marker="o", ms=4, label=r["model"])
    ax.axhline(0.0, color="black", lw=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("repetition")
    ax.set_ylabel("Γ_i")
    ax.set_title("Γ per repetition")
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def curves_figure(curves: dict[str, dict[str, list[float]]]) -> bytes:
    """One panel per (model, curve) found in the fit records."""
    import matplotlib.pyplot as plt

    panels = [(m, k, v) for m, found in curves.items() for k, v in found.items()]
    cols = min(3, len(panels))
    n_rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(4.2 * cols, 2.8 * n_rows), squeeze=False)
    for ax, (model, key, values) in zip(axes.ravel(), panels):
        ax.plot(np.arange(len(values)), values, marker=".", ms=3)
        ax.set_title(f"{model}: {key}", fontsize=8)
        ax.set_xlabel("step")
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def _page(title: str, table: str, sections: list[tuple[str, str, bytes | None]]) -> str:
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px;background:#fff;color:#222}"
        "pre{background:#f4f4f4;padding:1em;overflow-x:auto}img{max-width:100%;border:1px solid #ddd}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
        f"<h2>Ranking</h2><pre>{html.escape(table)}</pre>",
    ]
    for heading, text, png in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><p>{html.escape(text)}</p>")
        if png is not None:
            data = base64.b64encode(png).decode()
            parts.append(f"<img alt='{html.escape(heading)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir: Path, out_dir: Path | None = None, *, t_from: float | None = None,
                 t_to: float | None = None, stimulus: str | None = None) -> Path:
    """Write ``report.html`` and its PNG figures for a run; return the HTML's path.

    Args:
        run_dir: the run folder.
        out_dir: where to write (default ``run_dir/report``).
        t_from, t_to: the raster's stretch (s, absolute protocol time); default: the 2 s of
            the test window with the most recorded spikes.
        stimulus: the one test stimulus drawn in a raster (default: one raster per test stimulus).

    Raises:
        ReportError: nothing scored, or an unknown stimulus / empty stretch.
    """
    import matplotlib

    matplotlib.use("Agg")
    run_dir = Path(run_dir)
    info = json.loads((run_dir / RUN).read_text())
    records = load_records(run_dir)
    if not any(r.get("status") == "ok" for r in records):
        raise ReportError(f"{run_dir}: no scored model to report")
    challenge = _challenge_of(info)
    tests = {s.name: s for s in challenge.stimuli if s.test_window_s is not None}
    if stimulus is not None and stimulus not in tests:
        raise ReportError(f"stimulus {stimulus!r} is not a test stimulus of {challenge.name} ({', '.join(tests)})")
    drawn = [stimulus] if stimulus else list(tests)
    stretches = {}
    for name in drawn:
        win = tests[name].test_window_s
        start = busiest_stretch(challenge.test_recordings(name), win) if t_from is None else t_from
        stop = min(win[1], start + 2.0) if t_to is None else t_to
        if not stop > start:
            raise ReportError(f"empty stretch --from {start:g} s --to {stop:g} s")
        stretches[name] = (start, stop)
    ranked = [r for r in sorted(records, key=lambda r: -(r.get("performance") or -1e9)) if r.get("status") == "ok"]
    predictions: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in drawn}
    for r in ranked:
        try:
            saved = load_prediction(run_dir / r["model"] / "prediction.npz")
        except (OSError, ValueError):
            continue
        for name in drawn:
            if name in saved:
                predictions[name][r["model"]] = saved[name]
    rasters = {name: raster_figure(challenge, name, predictions[name], *stretches[name]) for name in drawn}
    reliability = float(np.mean([challenge.reliability(name) for name in tests]))  # one stimulus: its R
    raster_files = {name: "raster.png" if len(drawn) == 1 else f"raster_{name}.png" for name in drawn}
    figures: dict[str, bytes] = {
        **{raster_files[name]: png for name, png in rasters.items()},
        "performance.png": performance_figure(records, reliability),
        "per_repetition.png": repetition_figure(records),
    }
    curves = {r["model"]: c for r in ranked if (c := find_curves(r.get("fit_record") or {}))}
    if curves:
        figures["training_curves.png"] = curves_figure(curves)
    out_dir = Path(out_dir) if out_dir else run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in figures.items():
        (out_dir / name).write_bytes(png)
    table = format_table(ranking_rows(records), challenge_header(info))
    r_label = f"R = {reliability:.3f}" if len(tests) == 1 else f"mean R over the test stimuli = {reliability:.3f}"
    sections = [
        (f"Recorded and predicted spikes{'' if len(drawn) == 1 else f', stimulus {name}'}",
         f"Stimulus {name}, {stretches[name][0]:g}-{stretches[name][1]:g} s of the test window "
         f"{tests[name].test_window_s[0]:g}-{tests[name].test_window_s[1]:g} s: the "
         f"{len(challenge.test_recordings(name))} recorded repetitions (black) and the predictions of "
         f"{len(predictions[name])} scored models beneath (up to {MAX_MODEL_ROWS} trains each; a stochastic "
         f"entry's trains are numbered).", figures[raster_files[name]])
        for name in drawn
    ] + [
        ("Γ per model", f"Mean coincidence factor Γ (Δ = {1e3 * challenge.delta_s:g} ms) with bootstrap errors; "
         f"the dashed line is the intrinsic reliability, {r_label}.", figures["performance.png"]),
        ("Γ per repetition", "Γ_i between each model's prediction and recorded repetition i.",
         figures["per_repetition.png"]),
        ("Training curves",
         "Curves the plugins recorded in their fit records." if curves else
         "No plugin recorded a training curve (a list of numbers under a fit-record key such as "
         "'loss_curve' or '*_history').", figures.get("training_curves.png")),
    ]
    title = f"qsnmc report: {info['challenge']}, run {run_dir.name}"
    path = out_dir / "report.html"
    tmp = out_dir / ".report.html.tmp"
    tmp.write_text(_page(title, table, sections))
    tmp.replace(path)
    return path
