"""A row for predictions made outside qsnmc: scored as a plugin's, written to a run folder of its own.

The predictions were checked when read (:mod:`qsnmc.scoring.prediction_files`); here they are
scored by :func:`qsnmc.scoring.evaluation.score_predictions`, the scoring of every plugin's row,
and written in the runner's layout (``run.json``, ``<label>/record.json``,
``<label>/prediction.npz``), so ``qsnmc table``, ``qsnmc report`` and the ranking read it as any run.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from qsnmc.challenges.store import Challenge
from qsnmc.harness.runstore import (
    RECORD, RUN, challenge_fields, mark_latest, new_run_dir, package_versions, write_json_atomic,
)
from qsnmc.harness.worker import PREDICTION
from qsnmc.scoring.evaluation import score_predictions

#: the ``source`` of an outside row (a plugin's says built-in, entry point or submission)
SOURCE = "files"


def run_info(challenge: Challenge, files: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """``run.json`` of an outside row's run: the keys of a plugin run's, and the files scored."""
    return {
        **challenge_fields(challenge),
        "settings": {"seed": None, "seeds": [], "budget": None},
        "outside": {"files": list(files)},
        "versions": package_versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def outside_record(challenge: Challenge, predictions: Mapping[str, Sequence[np.ndarray]], label: str,
                   files: Sequence[Mapping[str, str]], description: str = "") -> dict[str, Any]:
    """The row's record, with the keys of a plugin's record and its score (Gamma, P, error, per stimulus)."""
    score = score_predictions(challenge, predictions)
    return {
        "model": label, "description": description or "spike times scored from files", "source": SOURCE,
        "version": "", "challenge": challenge.name, "challenge_source": challenge.source(),
        "seed": None, "budget": None, "status": "ok", "reason": "", "stage": "scored",
        "gamma": score.gamma, "performance": score.performance, "error": score.error,
        "fit_s": None, "predict_s": None, "cached": False, "sandboxed": None,
        "versions": package_versions(), "executor": None, "threads": None,
        "files": list(files), "fit_record": {}, "scores": score.to_dict()["stimuli"],
    }


def write_outside_run(runs_dir: Path, challenge: Challenge, predictions: Mapping[str, Sequence[np.ndarray]],
                      record: dict[str, Any]) -> Path:
    """A new run folder holding one row: ``run.json``, its record and its predictions; marked latest."""
    run_dir = new_run_dir(Path(runs_dir).resolve())
    write_json_atomic(run_dir / RUN, run_info(challenge, record["files"]))
    folder = run_dir / record["model"]
    folder.mkdir()
    arrays = {f"{name}/{i}": np.asarray(t, np.float64) for name, trains in predictions.items()
              for i, t in enumerate(trains)}
    np.savez(folder / PREDICTION, **arrays)
    write_json_atomic(folder / RECORD, record)
    mark_latest(run_dir)
    return run_dir
