"""``qsnmc report``: one self-contained HTML page (PNG figures embedded, and written beside it).

Figures (matplotlib, headless):
1. ``raster.png``: the competition's figure: the injected current over a stretch of the
   test window, the recorded repetitions as a raster, each model's predicted spikes beneath.
2. ``performance.png``: mean Gamma per model with its error (Err x R; over several seeds the
   mean over seeds with the combined error Err_c x R, and each seed's Gamma as a point beside
   the bar), and the intrinsic reliability R as a line (Gamma/R = 100 % there).
3. ``per_repetition.png``: one panel per test stimulus: Gamma_i of each model for each recorded
   repetition (over several seeds: the mean over the scored seeds).
4. ``training_curves.png``: the curves a plugin's fit record declares under ``"curves"``:
   ``{name: {"x": [...], "y": [...], "x_label": str, "y_label": str}}`` (each seed's curve in
   one panel); nothing else in a fit record is drawn.

For a suite folder (``qsnmc run`` over several challenges) the page holds the models x
challenges heat map of P (``suite.png``, each challenge's significant winner marked), the
across-cell table, and links to each challenge's own report (written beside it, one folder
per challenge).

The report process is a scoring process: it reads the hidden test spikes to draw them.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from qsnmc.challenges.store import Challenge, ChallengeError, load_challenge
from qsnmc.challenges.datadir import challenge_dir
from qsnmc.harness.runner import load_prediction
from qsnmc.harness.runstore import RUN, load_records, record_dir
from qsnmc.harness.suite import SUITE
from qsnmc.scoring.suite import SuiteTable, format_suite_table
from qsnmc.scoring.table import challenge_header, format_table, ranking_rows

#: the fit-record key under which a plugin declares its training curves
CURVES = "curves"
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


def training_curves(fit_record: Any) -> dict[str, dict[str, Any]]:
    """The training curves a fit record declares: ``fit_record["curves"]``, a dict of
    ``{name: {"x": [numbers], "y": [numbers], "x_label": str, "y_label": str}}``.

    A curve whose x and y are not equally long lists of 2 or more finite numbers is left out;
    missing labels read ``"step"`` and the curve's name. Nothing outside ``"curves"`` counts.
    """
    declared = fit_record.get(CURVES) if isinstance(fit_record, dict) else None
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(declared, dict):
        return out
    def numbers(v: Any) -> list[float] | None:
        ok = isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        return [float(x) for x in v] if ok and all(math.isfinite(x) for x in v) else None
    for name, curve in declared.items():
        if not isinstance(curve, dict):
            continue
        x, y = numbers(curve.get("x")), numbers(curve.get("y"))
        if x is None or y is None or len(x) != len(y) or len(x) < 2:
            continue
        out[str(name)] = {"x": x, "y": y, "x_label": str(curve.get("x_label") or "step"),
                          "y_label": str(curve.get("y_label") or name)}
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


#: where a figure's legend goes: to the right of the axes, outside the data
OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}


def performance_figure(rows: list[dict[str, Any]], reliability: float) -> bytes:
    """Mean Gamma per model (table rows) with its error bar (Err x R; over several seeds the
    combined Err_c x R), each scored seed's Gamma as a point beside its bar, and the R line."""
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    several = any(r.get("n_seeds", 1) > 1 for r in ok)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(ok) + 2), 3.6))
    x = np.arange(len(ok))
    gammas = [r["performance"] * reliability for r in ok]
    errors = [r["error"] * reliability for r in ok]
    ax.bar(x, gammas, yerr=errors, capsize=4, color="tab:blue", alpha=0.8,
           label="mean over seeds ± Err_c × R" if several else "Γ ± Err × R (bootstrap)")
    seed_points = [(i, s["performance"] * reliability) for i, r in enumerate(ok) for s in r.get("seeds", [])
                   if several and s["status"] == "ok"]
    if seed_points:
        ax.scatter([i + 0.3 for i, _ in seed_points], [g for _, g in seed_points], s=14, color="black", zorder=3,
                   label="each seed")
    ax.axhline(reliability, color="tab:red", ls="--", label=f"R = {reliability:.3f} (intrinsic reliability)")
    ax.axhline(0.0, color="black", lw=0.6)
    for i, r in enumerate(ok):
        ax.annotate(f"{100 * r['performance']:.1f} %", (i, r["performance"] * reliability), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
    ax.set_xticks(x, [r["model"] for r in ok])
    ax.set_ylim(top=1.25 * max([reliability, *gammas, *(g for _, g in seed_points)]))
    ax.set_ylabel("Γ (mean over repetitions)")
    ax.set_title("Γ per model (bars: mean over seeds, error Err_c; labels: Γ/R)" if several else
                 "Γ per model (bars: bootstrap error; labels: Γ/R)")
    ax.legend(fontsize=8, **OUTSIDE)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return _png(fig)


def _stimuli_of(records: list[dict[str, Any]]) -> list[str]:
    """The test stimuli the scored records hold scores of, in their order."""
    names: list[str] = []
    for r in records:
        for sc in r.get("scores") or []:
            if r.get("status") == "ok" and sc.get("stimulus") not in names:
                names.append(sc.get("stimulus"))
    return names


def _gammas(records: list[dict[str, Any]], model: str, stimulus: str) -> list[list[float]]:
    """Gamma_i of one model on one stimulus, one list per scored seed (seeds of another length dropped)."""
    per_seed = [sc.get("gammas", []) for r in records if r["model"] == model and r.get("status") == "ok"
                for sc in r.get("scores") or [] if sc.get("stimulus") == stimulus]
    return [g for g in per_seed if per_seed and len(g) == len(per_seed[0]) and g]


def repetition_figure(rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> bytes:
    """One panel per test stimulus: Gamma_i of each scored model (in table order) for each
    repetition; over several seeds, the mean over the scored seeds. The legend is the first panel's."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    stimuli = _stimuli_of(records) or [""]
    fig, axes = plt.subplots(len(stimuli), 1, figsize=(8, 0.4 + 3.0 * len(stimuli)), squeeze=False)
    for ax, stimulus in zip(axes[:, 0], stimuli):
        for row in (r for r in rows if r["status"] == "ok"):
            per_seed = _gammas(records, row["model"], stimulus)
            if not per_seed:
                continue
            gammas = np.mean(per_seed, axis=0)
            label = row["model"] if len(per_seed) == 1 else f"{row['model']} (mean of {len(per_seed)} seeds)"
            ax.plot(np.arange(1, len(gammas) + 1), gammas, marker="o", ms=4, label=label)
        ax.axhline(0.0, color="black", lw=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("repetition $i$")
        ax.set_ylabel(r"$\Gamma_i$")
        ax.set_title(r"$\Gamma_i$ per repetition" + (f", test stimulus {stimulus}" if len(stimuli) > 1 else ""))
    if axes[0, 0].lines[1:]:
        axes[0, 0].legend(fontsize=7, **OUTSIDE)
    fig.tight_layout()
    return _png(fig)


def curves_figure(curves: dict[str, dict[str, dict[int | None, dict[str, Any]]]]) -> bytes:
    """One panel per (model, curve), ``{model: {curve: {seed: curve}}}``, each seed's curve drawn in it."""
    import matplotlib.pyplot as plt

    panels = [(m, k, by_seed) for m, found in curves.items() for k, by_seed in found.items()]
    cols = min(3, len(panels))
    n_rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(4.2 * cols, 2.8 * n_rows), squeeze=False)
    for ax, (model, key, by_seed) in zip(axes.ravel(), panels):
        for seed, c in by_seed.items():
            ax.plot(c["x"], c["y"], marker=".", ms=3, label=None if len(by_seed) == 1 else f"seed {seed}")
        first = next(iter(by_seed.values()))
        ax.set_title(f"{model}: {key}", fontsize=8)
        ax.set_xlabel(first["x_label"], fontsize=8)
        ax.set_ylabel(first["y_label"], fontsize=8)
        if len(by_seed) > 1:
            ax.legend(fontsize=6, **OUTSIDE)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def _page(title: str, table: str, sections: list[tuple[str, str, bytes | None]],
          links: list[tuple[str, str]] | None = None) -> str:
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
    if links:
        parts.append("<h2>Each challenge's report</h2><ul>")
        parts.extend(f"<li><a href='{html.escape(href)}'>{html.escape(text)}</a></li>" if href else
                     f"<li>{html.escape(text)}</li>" for text, href in links)
        parts.append("</ul>")
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
    if SUITE in info:
        if t_from is not None or t_to is not None or stimulus is not None:
            raise ReportError(f"--from, --to and --stimulus draw one challenge: report {run_dir.name}/CELL instead")
        return write_suite_report(run_dir, out_dir)
    records = load_records(run_dir)
    if not any(r.get("status") == "ok" for r in records):
        raise ReportError(f"{run_dir}: no scored model to report")
    challenge = _challenge_of(info)
    tests = {s.name: s for s in challenge.stimuli if s.test_window_s is not None}
    if stimulus is not None and stimulus not in tests:
        raise ReportError(f"stimulus {stimulus!r} is not a test stimulus of {challenge.name} ({', '.join(tests)})")
    drawn = [stimulus] if stimulus else list(tests)
    stretches = _stretches(challenge, drawn, t_from, t_to)
    rows = ranking_rows(records)
    several = any(r["n_seeds"] > 1 for r in rows)
    scored = [r for r in records if r.get("status") == "ok"]
    predictions = _predictions(run_dir, rows, scored, drawn, several)
    rasters = {name: raster_figure(challenge, name, predictions[name], *stretches[name]) for name in drawn}
    reliability = float(np.mean([challenge.reliability(name) for name in tests]))  # one stimulus: its R
    raster_files = {name: "raster.png" if len(drawn) == 1 else f"raster_{name}.png" for name in drawn}
    figures: dict[str, bytes] = {
        **{raster_files[name]: png for name, png in rasters.items()},
        "performance.png": performance_figure(rows, reliability),
        "per_repetition.png": repetition_figure(rows, records),
    }
    curves = _curves(rows, scored)
    if curves:
        figures["training_curves.png"] = curves_figure(curves)
    out_dir = Path(out_dir) if out_dir else run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in figures.items():
        (out_dir / name).write_bytes(png)
    table = format_table(rows, challenge_header(info))
    r_label = f"R = {reliability:.3f}" if len(tests) == 1 else f"mean R over the test stimuli = {reliability:.3f}"
    sections = _raster_sections(challenge, drawn, stretches, predictions, figures, raster_files) + [
        ("Γ per model", f"Mean coincidence factor Γ (Δ = {1e3 * challenge.delta_s:g} ms) with "
         + ("its mean over seeds, the combined error Err_c (bootstrap and seed spread) and each seed's Γ as a "
            "point beside the bar; " if several else "bootstrap errors; ")
         + f"the dashed line is the intrinsic reliability, {r_label}.", figures["performance.png"]),
        ("Γ per repetition", "Γ_i between each model's prediction and recorded repetition i, one panel per test "
         f"stimulus ({', '.join(tests)})" + (" (mean over the scored seeds)." if several else "."),
         figures["per_repetition.png"]),
        ("Training curves",
         "The training curves the plugins declared in their fit records: "
         + "; ".join(f"{m}: {', '.join(found)}" for m, found in curves.items()) + "." if curves else
         "No plugin declared a training curve (a fit record's 'curves': {name: {x, y, x_label, y_label}}).",
         figures.get("training_curves.png")),
    ]
    title = f"qsnmc report: {info['challenge']}, run {run_dir.name}"
    path = out_dir / "report.html"
    tmp = out_dir / ".report.html.tmp"
    tmp.write_text(_page(title, table, sections))
    tmp.replace(path)
    return path


def _stretches(challenge: Challenge, drawn: list[str], t_from: float | None,
               t_to: float | None) -> dict[str, tuple[float, float]]:
    """Per drawn stimulus, the raster's stretch (s): --from/--to, or the busiest 2 s of its test window."""
    tests = {s.name: s for s in challenge.stimuli if s.test_window_s is not None}
    stretches = {}
    for name in drawn:
        win = tests[name].test_window_s
        for flag, t in (("--from", t_from), ("--to", t_to)):
            if t is not None and not win[0] <= t <= win[1]:
                raise ReportError(f"{flag} {t:g} s: outside the test window {win[0]:g}-{win[1]:g} s of stimulus "
                                  f"{name} (the raster draws the test window; times are absolute protocol time)")
        start = busiest_stretch(challenge.test_recordings(name), win) if t_from is None else t_from
        stop = min(win[1], start + 2.0) if t_to is None else t_to
        if not stop > start:
            raise ReportError(f"empty stretch --from {start:g} s --to {stop:g} s")
        stretches[name] = (start, stop)
    return stretches


def _predictions(run_dir: Path, rows: list[dict[str, Any]], scored: list[dict[str, Any]], drawn: list[str],
                 several: bool) -> dict[str, dict[str, list[np.ndarray]]]:
    """Per drawn stimulus, the saved predicted trains of each scored model's first scored seed, by label."""
    predictions: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in drawn}
    for row in (r for r in rows if r["status"] == "ok"):
        shown = next(r for r in scored if r["model"] == row["model"])  # its first scored seed
        try:
            saved = load_prediction(record_dir(run_dir, shown) / "prediction.npz")
        except (OSError, ValueError):
            continue
        label = f"{row['model']} (seed {shown.get('seed')})" if several else row["model"]
        for name in drawn:
            if name in saved:
                predictions[name][label] = saved[name]
    return predictions


def _curves(rows: list[dict[str, Any]],
            scored: list[dict[str, Any]]) -> dict[str, dict[str, dict[int | None, dict[str, Any]]]]:
    """The training curves the scored records declare: model -> curve name -> seed -> curve."""
    curves: dict[str, dict[str, dict[int | None, dict[str, Any]]]] = {}
    for row in (r for r in rows if r["status"] == "ok"):
        for r in (r for r in scored if r["model"] == row["model"]):
            for key, curve in training_curves(r.get("fit_record")).items():
                curves.setdefault(row["model"], {}).setdefault(key, {})[r.get("seed")] = curve
    return curves


def _raster_sections(challenge: Challenge, drawn: list[str], stretches: dict[str, tuple[float, float]],
                     predictions: dict[str, dict[str, list[np.ndarray]]], figures: dict[str, bytes],
                     raster_files: dict[str, str]) -> list[tuple[str, str, bytes | None]]:
    """The report's raster sections (title, caption, PNG), one per drawn stimulus."""
    tests = {s.name: s for s in challenge.stimuli if s.test_window_s is not None}
    return [
        (f"Recorded and predicted spikes{'' if len(drawn) == 1 else f', stimulus {name}'}",
         f"Stimulus {name}, {stretches[name][0]:g}-{stretches[name][1]:g} s of the test window "
         f"{tests[name].test_window_s[0]:g}-{tests[name].test_window_s[1]:g} s: the "
         f"{len(challenge.test_recordings(name))} recorded repetitions (black) and the predictions of "
         f"{len(predictions[name])} scored models beneath (up to {MAX_MODEL_ROWS} trains each; a stochastic "
         f"entry's trains are numbered).", figures[raster_files[name]])
        for name in drawn
    ]


def suite_figure(table: SuiteTable) -> bytes:
    """Heat map of P (%) per model (rows, in the table's order) and challenge (columns), each value
    written in its cell; a failed cell is grey, a challenge's significant winner framed and starred."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cells, rows = list(table.cells), list(table.rows)
    values = np.array([[np.nan if r.performance[c] is None else 100 * r.performance[c] for c in cells] for r in rows])
    fig, ax = plt.subplots(figsize=(2.0 + 1.1 * len(cells), 1.2 + 0.42 * len(rows)))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("0.85")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
    finite = values[np.isfinite(values)]
    middle = float(np.mean([finite.min(), finite.max()])) if finite.size else 0.0
    for i, r in enumerate(rows):
        for j, c in enumerate(cells):
            v = values[i, j]
            won = c in r.cells_won
            text = "failed" if not np.isfinite(v) else f"{v:.1f}" + (" ★" if won else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=8, fontweight="bold" if won else "normal",
                    color="black" if not np.isfinite(v) or v > middle else "white")
            if won:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:red", lw=2.0))
    ax.set_xticks(np.arange(len(cells)), cells)
    def label(r) -> str:
        if r.mean_performance is None:
            return r.model
        over = "" if r.n_scored == len(cells) else f" over {r.n_scored}/{len(cells)}"
        return f"{r.model} (mean {100 * r.mean_performance:.1f}{over})"
    ax.set_yticks(np.arange(len(rows)), [label(r) for r in rows])
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.set_title("P = Γ/R (%) per model and challenge; ★ framed: the challenge's significant winner", fontsize=9)
    fig.colorbar(image, ax=ax, label="P (%)")
    return _png(fig)


def write_suite_report(run_dir: Path, out_dir: Path | None = None) -> Path:
    """Write a suite folder's ``report.html`` (heat map, across-cell table, links) and each challenge's
    own report into ``<out_dir>/<challenge>/``; return the page's path.

    Raises:
        ReportError: no model scored on any challenge.
    """
    from qsnmc.cli.suites import suite_header, suite_of_run

    table, _ = suite_of_run(run_dir)
    if table.leader is None:
        raise ReportError(f"{run_dir}: no scored model to report")
    out_dir = Path(out_dir) if out_dir else run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    png = suite_figure(table)
    (out_dir / "suite.png").write_bytes(png)
    links = []
    for cell in table.cells:
        try:
            page = write_report(run_dir / cell, out_dir / cell)
            links.append((f"{cell}: raster, Γ per model and per repetition", str(page.relative_to(out_dir))))
        except (ReportError, ChallengeError, FileNotFoundError) as exc:
            links.append((f"{cell}: no report ({exc})", ""))
    caption = ("P = Γ/R in % of each challenge's intrinsic reliability R, per model (rows, leader first) and "
               "challenge (columns); grey: the model failed there; framed with ★: the challenge's significant "
               "winner (an empty or at-chance prediction never wins).")
    text = format_suite_table(table, suite_header(run_dir))
    path = out_dir / "report.html"
    tmp = out_dir / ".report.html.tmp"
    tmp.write_text(_page(f"qsnmc report: suite {run_dir.name}", text, [("Models × challenges", caption, png)], links))
    tmp.replace(path)
    return path
