"""Parameter sweeps scored on held-out training data, never on the test window.

A model class may expose ``param_grid = {"setting": [value, ...], ...}``; its factory then
accepts those settings as keyword arguments. ``qsnmc sweep NAME`` builds *held-out
challenges* from the public training data alone, with the core's validation folds
(:meth:`qsnmc.TrainingData.folds`):

- ``--split time``: each training window is cut in two; the model is fitted on the first
  part and predicts the last ``holdout`` fraction (one held-out challenge);
- ``--split stimulus``: leave one stimulus out; one held-out challenge per stimulus, fitted
  on all the others and predicting the left-out one whole.

Held-out parts whose own R is under ``r_floor`` are not scored (they barely repeat).
Each setting of each fold is one row of an ordinary run (same executors, sandbox,
cache); a setting's held-out P averages every scored stimulus of every fold with equal
weight, as the competition averages its test stimuli. The summary and the best setting
go to ``sweep.json`` in the sweep's run folder.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from qsnmc.challenges.store import Challenge, ChallengeStimulus
from qsnmc.data import Fold
from qsnmc.harness.discovery import ModelEntry
from qsnmc.harness.runner import Runner, RunSettings, Task
from qsnmc.harness.runstore import mark_latest, new_run_dir, write_json_atomic
from qsnmc.scoring.metrics import bootstrap_error, performance
from qsnmc.scoring.validation import R_FLOOR, heldout_reliability

SWEEP = "sweep.json"
SPLITS = ("time", "stimulus")


def fold_challenge(challenge: Challenge, fold: Fold, r_floor: float | None = None) -> Challenge | None:
    """A challenge made of one validation fold: its ``fit`` data train, its held-out stimuli test.

    Held-out stimuli whose R is under ``r_floor`` (when given) are left out of the test;
    returns None when none is left.
    """
    fit = {s.name: s for s in fold.fit.stimuli}
    held, reliability = {}, {}
    for h in fold.heldout:
        r = heldout_reliability(h, challenge.delta_s)
        if r_floor is None or (np.isfinite(r) and r >= r_floor):
            held[h.name], reliability[h.name] = h, r
    if not held:
        return None
    stimuli, meta = [], []
    for orig in challenge.stimuli:
        f, h = fit.get(orig.name), held.get(orig.name)
        if f is None and h is None:
            continue
        stimuli.append(ChallengeStimulus(
            name=orig.name, dt_s=orig.dt_s, current_pA=orig.current_pA, n_repetitions=orig.n_repetitions,
            train_window_s=f.window_s if f else None, train_voltage_mV=np.asarray(f.voltage_mV) if f else None,
            train_spikes_s=[np.asarray(t) for t in f.spike_times_s] if f else None,
            test_window_s=h.stimulus.window_s if h else None,
            test_spikes_s=[np.asarray(t) for t in h.spike_times_s] if h else None,
        ))
        meta.append({"name": orig.name, "train_window_s": list(f.window_s) if f else None,
                     "test_window_s": list(h.stimulus.window_s) if h else None})
    manifest = {"stimuli": meta, "files": challenge.manifest.get("files", {}), "heldout_of": challenge.name,
                "fold": fold.label, "reliability": reliability}  # R, computed once here, read by the scorer
    return Challenge(name=f"{challenge.name}:{fold.label}", stimuli=stimuli, delta_s=challenge.delta_s,
                     threshold_mV=challenge.threshold_mV, description=f"{fold.label} of {challenge.name}'s training",
                     path=challenge.path, manifest=manifest)


def heldout_challenges(challenge: Challenge, split: str = "time", holdout: float = 0.25,
                       r_floor: float | None = R_FLOOR) -> list[Challenge]:
    """The held-out challenges of a split (see the module docstring), unscorable folds dropped.

    Raises:
        ValueError: an unknown split, a bad fraction, a single-stimulus challenge for the
            stimulus split, or no held-out stimulus reaching ``r_floor``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    folds = challenge.training_data().folds(split, holdout)
    out = [c for f in folds if (c := fold_challenge(challenge, f, r_floor)) is not None]
    if not out:
        raise ValueError(f"no held-out part of {challenge.name!r} has R >= {r_floor:g}: nothing to score a sweep on")
    return out


def heldout_challenge(challenge: Challenge, holdout: float = 0.25, r_floor: float | None = None) -> Challenge:
    """The time split's held-out challenge: fit on the first part of each training window, score on the rest.

    Raises:
        ValueError: a bad fraction, or nothing left to score.
    """
    return heldout_challenges(challenge, "time", holdout, r_floor)[0]


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of a parameter grid, keys in sorted order."""
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def setting_label(model: str, i: int) -> str:
    return f"{model}@{i:03d}"


@dataclass
class SweepResult:
    """A finished sweep: its run folder, every setting's record, and the best setting (or None)."""

    model: str
    run_dir: Path
    records: list[dict[str, Any]]
    best: dict[str, Any] | None


def _combine(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    """One setting's rows over every fold: P over all scored stimuli (equal weights) and its error."""
    failed = [r for r in per_fold if r["status"] != "ok"]
    if failed:
        return {"status": "failed", "reason": failed[0]["reason"], "performance": None, "error": None, "gamma": None}
    stims = [s for r in per_fold for s in r.get("scores") or []]
    norm = [np.asarray(s["gammas"], dtype=float) / s["reliability"] for s in stims]
    return {"status": "ok", "reason": "", "performance": performance(norm), "error": bootstrap_error(norm),
            "gamma": float(np.mean([np.mean(s["gammas"]) for s in stims]))}


def _by_setting(per_fold: list[list[dict[str, Any]]], combine: bool) -> list[dict[str, Any]]:
    """One record per setting, in grid order: its rows over folds and seeds combined (:func:`_combine`),
    or its one row as it is."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rows in per_fold:
        for r in rows:
            groups.setdefault(r["model"], []).append(r)
    return [{**rows[0], **_combine(rows)} if combine else rows[0] for rows in groups.values()]


def run_sweep(challenge: Challenge, entry: ModelEntry, runs_dir: Path, settings: RunSettings, *,
              split: str = "time", holdout: float = 0.25, r_floor: float = R_FLOOR,
              grid: dict[str, list] | None = None, executor: Any = None,
              on_done: Callable[[dict[str, Any]], None] | None = None,
              fixed: dict[str, Any] | None = None) -> SweepResult:
    """Evaluate every point of ``grid`` (default: the model's ``param_grid``) on held-out training data.

    With the time split the sweep is one run; with the stimulus split, one run per fold
    inside the sweep's folder (``folds/``), combined per setting in ``sweep.json``. ``fixed``
    settings go to every point; with several seeds in ``settings`` every point is fitted once
    per seed, and its held-out P pools the seeds' scored stimuli like the folds'.

    Raises:
        ValueError: the model has no grid, or the split has nothing to score.
    """
    grid = grid or entry.param_grid
    if not grid:
        raise ValueError(f"model {entry.name!r} exposes no param_grid")
    helds = heldout_challenges(challenge, split, holdout, r_floor)
    points = grid_points(grid)
    tasks = [Task(entry, {**(fixed or {}), **p}, setting_label(entry.name, i)) for i, p in enumerate(points)]
    sweep_info = {"model": entry.name, "split": split, "holdout": holdout, "r_floor": r_floor, "grid": grid,
                  "of_challenge": challenge.name, "fixed": dict(fixed or {}), "seeds": list(settings.seed_list)}
    if split == "time":
        info = {"sweep": {**sweep_info, "windows": helds[0].manifest["stimuli"]}}
        runner = Runner(helds[0], runs_dir, settings, executor=executor, extra_info=info)
        run_dir, per_fold = runner.run_dir, [runner.run(tasks, on_done=on_done)]
    else:
        run_dir = new_run_dir(Path(runs_dir).resolve())
        per_fold = []
        for held in helds:
            info = {"sweep": {**sweep_info, "fold": held.manifest["fold"], "windows": held.manifest["stimuli"]}}
            per_fold.append(Runner(held, run_dir / "folds", settings, executor=executor, extra_info=info)
                            .run(tasks, on_done=on_done))
        mark_latest(run_dir)
    records = _by_setting(per_fold, combine=split != "time" or settings.several_seeds)
    ok = [r for r in records if r["status"] == "ok"]
    best = max(ok, key=lambda r: r["performance"]) if ok else None
    summary = {
        **sweep_info,
        "folds": [h.manifest["fold"] for h in helds],
        "settings": [
            {"label": r["model"], "params": r.get("params", {}), "status": r["status"], "gamma": r["gamma"],
             "performance": r["performance"], "error": r["error"], "reason": r["reason"]}
            for r in records
        ],
        "best": None if best is None else {"label": best["model"], "params": best.get("params", {}),
                                           "performance": best["performance"], "error": best["error"]},
    }
    write_json_atomic(run_dir / SWEEP, summary)
    return SweepResult(entry.name, run_dir, records, summary["best"])


def format_sweep(result: SweepResult) -> str:
    """The sweep as a table: one row per setting, best first, the best marked."""
    from tabulate import tabulate

    keys = sorted({k for r in result.records for k in r.get("params", {})})
    rows = sorted(result.records, key=lambda r: (r["status"] != "ok", -(r["performance"] or 0.0)))
    best = result.best["label"] if result.best else None
    table = [
        [("*" if r["model"] == best else ""), r["model"], *(json.dumps(r.get("params", {}).get(k)) for k in keys),
         "" if r["performance"] is None else f"{100 * r['performance']:.1f}",
         "" if r["error"] is None else f"{100 * r['error']:.1f}",
         "ok" if r["status"] == "ok" else f"FAILED: {r['reason'][:80]}"]
        for r in rows
    ]
    text = tabulate(table, headers=["best", "setting", *keys, "held-out Γ/R %", "± err %", "status"], tablefmt="github")
    if result.best:
        args = " ".join(f"--param {k}={v if isinstance(v, str) else json.dumps(v)}"
                        for k, v in result.best["params"].items())
        text += f"\nBest: {result.best['params']} (held-out Γ/R {100 * result.best['performance']:.1f} %)."
        text += f"\nTo score it on the test window: qsnmc run {result.model} {args}"
    else:
        text += "\nNo setting could be scored."
    return text
