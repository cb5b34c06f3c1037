"""The isolated worker process: imports plugin code, fits, predicts.

Run as ``python -m qsnmc.harness.worker discover OUT.jsonl SOURCES.json`` or
``python -m qsnmc.harness.worker run JOBDIR``. It reads only what its job folder holds (the
public training data and the stimuli to predict) and writes its results there;
it never receives test-window data.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from qsnmc.settings import schema_of_factory
from qsnmc.fitting.torch_numerics import set_portable_torch_environment
from qsnmc.harness.numerics import numerics_info
from qsnmc.harness.plugins import PluginSource, instantiate, load_models

INPUT = "input.pkl"
JOB = "job.json"
RESULT = "result.json"
PREDICTION = "prediction.npz"


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return repr(x)


def discover(out: Path, sources_file: Path) -> int:
    """Import each source in turn; append one JSON line per source to ``out``."""
    sources = [PluginSource.from_dict(d) for d in json.loads(sources_file.read_text())]
    with open(out, "a") as f:
        for src in sources:
            f.write(json.dumps({"started": src.to_dict()}) + "\n")
            f.flush()
            try:
                models = load_models(src)
                info = [
                    {
                        "name": name,
                        "description": str(getattr(factory, "description", "") or (factory.__doc__ or "").strip().split("\n")[0]),
                        "version": str(getattr(sys.modules.get(getattr(factory, "__module__", "")), "__version__", "")),
                        "param_grid": _param_grid(factory),
                        "settings": schema_of_factory(factory),
                        "typical_fit_s": _typical_fit_s(factory),
                    }
                    for name, factory in models.items()
                ]
                rec = {"source": src.to_dict(), "models": info, "error": None}
            except BaseException as exc:  # noqa: BLE001 - any failure becomes this source's error
                rec = {"source": src.to_dict(), "models": [], "error": f"{type(exc).__name__}: {exc}"}
            f.write(json.dumps(rec) + "\n")
            f.flush()
    return 0


def _typical_fit_s(factory: Any) -> float | None:
    """The factory's ``typical_fit_s`` (s at budget 1, one core), or None.

    Raises:
        ValueError: anything but None or a finite number >= 0.
    """
    value = getattr(factory, "typical_fit_s", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < float("inf")):
        raise ValueError(f"{getattr(factory, 'name', factory)!r}: typical_fit_s must be a number of seconds >= 0, "
                         f"got {value!r}")
    return float(value)


def _param_grid(factory: Any) -> dict[str, list] | None:
    """The factory's ``param_grid`` (name -> list of JSON values) for ``qsnmc sweep``, or None.

    Raises:
        ValueError: a grid that is not a dict of non-empty lists of JSON values.
    """
    grid = getattr(factory, "param_grid", None)
    if grid is None:
        return None
    if not isinstance(grid, dict) or not all(isinstance(k, str) and isinstance(v, (list, tuple)) and v
                                             for k, v in grid.items()):
        raise ValueError(f"{getattr(factory, 'name', factory)!r}: param_grid must map names to non-empty lists")
    grid = {k: list(v) for k, v in grid.items()}
    if json.loads(json.dumps(grid)) != grid:
        raise ValueError(f"{getattr(factory, 'name', factory)!r}: param_grid values must be JSON numbers, strings or booleans")
    return grid


def _as_trains(output: Any) -> list[np.ndarray]:
    if isinstance(output, np.ndarray) and output.dtype != object and output.ndim <= 1:
        return [np.asarray(output, dtype=np.float64)]
    if isinstance(output, (list, tuple)) and all(np.ndim(x) == 0 for x in output):
        return [np.asarray(output, dtype=np.float64)]
    return [np.asarray(t, dtype=np.float64).ravel() for t in output]


def run(jobdir: Path) -> int:
    """Fit the job's model on the training data and predict every stimulus."""
    job = json.loads((jobdir / JOB).read_text())
    result: dict[str, Any] = {"status": "error", "stage": "import"}
    try:
        factory = load_models(PluginSource.from_dict(job["source"]))[job["model"]]
        with open(jobdir / INPUT, "rb") as f:
            train, stimuli = pickle.load(f)
        result["stage"] = "fit"
        model = instantiate(factory, job["seed"], job["budget"], job.get("params", {}))
        t0 = time.perf_counter()
        record = model.fit(train)
        result["fit_s"] = time.perf_counter() - t0
        result["record"] = record if isinstance(record, dict) else {}
        result["stage"] = "predict"
        t0 = time.perf_counter()
        arrays = {}
        for stim in stimuli:
            for i, t in enumerate(_as_trains(model.predict(stim))):
                arrays[f"{stim.name}/{i}"] = t
        result["predict_s"] = time.perf_counter() - t0
        np.savez(jobdir / "prediction.tmp.npz", **arrays)
        os.replace(jobdir / "prediction.tmp.npz", jobdir / PREDICTION)
        result["status"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - reported to the scoring process as this row's failure
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=20)
    try:  # after fit and prediction: the libraries the model loaded and the settings it left
        result["numerics"] = numerics_info()
    except Exception as exc:  # noqa: BLE001 - a record without numerics, never a failed row
        result["numerics"] = {"error": f"{type(exc).__name__}: {exc}"}
    _write_json(jobdir / RESULT, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # before any plugin is imported: torch's kernels, if a plugin uses torch, round alike on any CPU
    set_portable_torch_environment()
    if argv[:1] == ["discover"] and len(argv) == 3:
        return discover(Path(argv[1]), Path(argv[2]))
    if argv[:1] == ["run"] and len(argv) == 2:
        return run(Path(argv[1]))
    print("usage: python -m qsnmc.harness.worker discover OUT SOURCES | run JOBDIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
