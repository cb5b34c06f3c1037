"""Parameter sweeps scored on the training window's held-out part, never on the test window.

A model class may expose ``param_grid = {"setting": [value, ...], ...}``; its factory then
accepts those settings as keyword arguments. ``qsnmc sweep NAME`` builds a *held-out
challenge* from the public training data alone: each training window is cut in two, the
model is fitted on the first part and predicts the last ``holdout`` fraction, which is
scored against the training recordings there (Gamma/R, with R of those recordings).
Every setting is one row of an ordinary run (same executors, sandbox, cache); the best
setting is written to ``sweep.json`` in the run folder.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from qsnmc.challenges.store import Challenge, ChallengeStimulus
from qsnmc.harness.discovery import ModelEntry
from qsnmc.harness.runner import Runner, RunSettings, Task
from qsnmc.harness.runstore import write_json_atomic

SWEEP = "sweep.json"


def heldout_challenge(challenge: Challenge, holdout: float = 0.25) -> Challenge:
    """A challenge made of the training windows only: fit on the first part, score on the rest.

    Args:
        challenge: the full challenge (only its training windows are used).
        holdout: fraction of each training window kept for scoring (0 < holdout < 1).

    Raises:
        ValueError: a bad fraction, or a challenge without training windows.
    """
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be between 0 and 1, got {holdout}")
    stimuli, meta = [], []
    for s in challenge.stimuli:
        if s.train_window_s is None:
            continue
        start, stop = s.train_window_s
        n_fit = int(round((1.0 - holdout) * (stop - start) / s.dt_s))
        split = start + n_fit * s.dt_s
        trains = [np.asarray(t) for t in s.train_spikes_s]
        stimuli.append(ChallengeStimulus(
            name=s.name, dt_s=s.dt_s, current_pA=s.current_pA, n_repetitions=s.n_repetitions,
            train_window_s=(start, split), train_voltage_mV=s.train_voltage_mV[:, :n_fit],
            train_spikes_s=[t[t < split] for t in trains],
            test_window_s=(split, stop), test_spikes_s=[t[t >= split] for t in trains],
        ))
        meta.append({"name": s.name, "train_window_s": [start, split], "test_window_s": [split, stop]})
    if not stimuli:
        raise ValueError(f"challenge {challenge.name!r} has no training window to split")
    manifest = {"stimuli": meta, "files": challenge.manifest.get("files", {}), "heldout_of": challenge.name}
    return Challenge(name=f"{challenge.name}:held-out-{holdout:g}", stimuli=stimuli, delta_s=challenge.delta_s,
                     threshold_mV=challenge.threshold_mV, description=f"held-out part of {challenge.name}'s training",
                     path=challenge.path, manifest=manifest)


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


def run_sweep(challenge: Challenge, entry: ModelEntry, runs_dir: Path, settings: RunSettings, *,
              holdout: float = 0.25, grid: dict[str, list] | None = None, executor: Any = None,
              on_done: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Evaluate every point of ``grid`` (default: the model's ``param_grid``) on the held-out part.

    Raises:
        ValueError: the model has no grid, or the challenge no training window.
    """
    grid = grid or entry.param_grid
    if not grid:
        raise ValueError(f"model {entry.name!r} exposes no param_grid")
    held = heldout_challenge(challenge, holdout)
    points = grid_points(grid)
    tasks = [Task(entry, p, setting_label(entry.name, i)) for i, p in enumerate(points)]
    info = {"sweep": {"model": entry.name, "holdout": holdout, "grid": grid, "of_challenge": challenge.name,
                      "windows": held.manifest["stimuli"]}}
    runner = Runner(held, runs_dir, settings, executor=executor, extra_info=info)
    records = runner.run(tasks, on_done=on_done)
    ok = [r for r in records if r["status"] == "ok"]
    best = max(ok, key=lambda r: r["performance"]) if ok else None
    summary = {
        **info["sweep"],
        "settings": [
            {"label": r["model"], "params": r.get("params", {}), "status": r["status"], "gamma": r["gamma"],
             "performance": r["performance"], "error": r["error"], "reason": r["reason"]}
            for r in records
        ],
        "best": None if best is None else {"label": best["model"], "params": best.get("params", {}),
                                           "performance": best["performance"], "error": best["error"]},
    }
    write_json_atomic(runner.run_dir / SWEEP, summary)
    return SweepResult(entry.name, runner.run_dir, records, summary["best"])


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
