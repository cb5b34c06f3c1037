"""Rows of several run folders ranked together (``qsnmc table RUN RUN ...``, ``qsnmc score --against RUN``).

Runs rank together only on one challenge: the same name, Delta and test windows. A model
name found in two runs is told apart by its run's folder name (``lif@20260101-120000``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from qsnmc.harness.runstore import RUN, load_records


class RankError(ValueError):
    """Runs that cannot be ranked together; one line saying why."""


def same_challenge(info: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two runs' ``run.json`` name the same challenge with the same Delta and test windows."""
    def key(i: dict[str, Any]) -> tuple:
        return (i["challenge"], i["delta_s"], tuple((s["name"], tuple(s["test_window_s"] or ()))
                                                    for s in i.get("stimuli", [])))
    return key(info) == key(other)


def check_same_challenge(run_dirs: Sequence[Path], infos: Sequence[dict[str, Any]]) -> None:
    """Refuse runs on different challenges (their P are not comparable)."""
    for run_dir, info in zip(run_dirs[1:], infos[1:]):
        if not same_challenge(infos[0], info):
            raise RankError(f"{run_dir} is a run on challenge {info['challenge']!r}, {run_dirs[0]} on "
                            f"{infos[0]['challenge']!r} (or other windows or Delta): rows rank only on one challenge")


def records_of_runs(run_dirs: Sequence[Path]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every job record of the runs, ranked as one run's, and the first run's ``run.json``.

    Raises:
        RankError: runs on different challenges.
    """
    infos = [json.loads((d / RUN).read_text()) for d in run_dirs]
    check_same_challenge(run_dirs, infos)
    per_run = [load_records(d) for d in run_dirs]
    seen: dict[str, int] = {}
    for k, records in enumerate(per_run):
        for name in {r["model"] for r in records}:
            seen[name] = seen.get(name, 0) + 1
    merged = []
    for run_dir, records in zip(run_dirs, per_run):
        for r in records:
            merged.append({**r, "model": f"{r['model']}@{run_dir.name}"} if seen[r["model"]] > 1 else r)
    return merged, infos[0]
