"""A model's settings scored on held-out training data (never the test window): time split and leave-one-stimulus-out.

For each challenge (embedded, qsnmc2007a) and each setting given as JSON keyword arguments,
fit a fresh model per fold and score the held-out stimuli with the core's
:class:`qsnmc.ValidationScore`: held-out P (Gamma/R per stimulus with R >= 0.3, equal
weights), the mean |ln| spike-count ratio over every held-out stimulus, and per-stimulus
count ratios. Folds: the last 25 % of each training window (``time``), and on a challenge
with several stimuli each stimulus left out whole (``stimulus``). Appends to
``results/folds_<model>.json``.

``--set NAME=VALUE`` overrides a constant of the model's module for the whole run (recorded
in the result's key); ``--set SUBMODULE.NAME=VALUE`` one of another module of its package
(e.g. ``spike_rule.THRESHOLD_RANGE_MV=12`` for the ARX).

Run: ``python benchmarks/bench_folds.py mat '{"n_kernels": 3}' --budget 0.25 --split stimulus``
or ``python benchmarks/bench_folds.py gif '{"threshold_input": true}' --set THRESHOLD_INPUT_CANDIDATE_S="(5.0, 20.0)"``
"""
from __future__ import annotations

import argparse
import ast
import importlib
import json
import time
from pathlib import Path

import qsnmc
from qsnmc_plugins.arx.model import ArxModel
from qsnmc_plugins.baselines.lif import LeakyIntegrateAndFire
from qsnmc_plugins.gif.model import GIFModel
from qsnmc_plugins.mat.model import MATModel

MODELS = {"mat": MATModel, "arx": ArxModel, "lif": LeakyIntegrateAndFire, "gif": GIFModel}
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("settings", nargs="*", default=["{}"], help="JSON keyword arguments, one setting each")
    parser.add_argument("--challenge", action="append", help="default: embedded and qsnmc2007a")
    parser.add_argument("--split", action="append", choices=["time", "stimulus"], help="default: both")
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--set", nargs="*", default=[], help="NAME=VALUE overrides of the model module's constants")
    args = parser.parse_args()
    cls = MODELS[args.model]
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        where, _, const = name.rpartition(".")
        # NAME: the model's module; SUBMODULE.NAME: a module of the model's package
        module = importlib.import_module(f"{cls.__module__.rpartition('.')[0]}.{where}" if where else cls.__module__)
        if not hasattr(module, const):
            raise SystemExit(f"{module.__name__} has no setting {const}")
        overrides[name] = ast.literal_eval(value)
        setattr(module, const, overrides[name])
    out_path = RESULTS / f"folds_{args.model}.json"
    for name in args.challenge or ["embedded", "qsnmc2007a"]:
        folder = qsnmc.challenge_dir(name)
        if not (folder / "manifest.json").is_file():
            print(f"{name}: not imported, skipped")
            continue
        train = qsnmc.load_challenge(folder).training_data()
        for split in args.split or ["time", "stimulus"]:
            if split == "stimulus" and len(train.stimuli) < 2:
                continue
            folds = train.folds(split, 0.25)
            for setting in args.settings:
                kwargs = json.loads(setting)
                t0, c0 = time.perf_counter(), time.process_time()
                scores = [qsnmc.validate_model(cls(seed=0, budget=args.budget, **kwargs), f) for f in folds]
                merged = scores[0]
                for sc in scores[1:]:
                    merged = merged.merged(sc)
                key = f"{name}/{split}/budget {args.budget:g}/{json.dumps(kwargs, sort_keys=True)}"
                if overrides:
                    key += f"/{json.dumps({k: repr(v) for k, v in overrides.items()}, sort_keys=True)}"
                # re-read before each write: several runs may append to the same file
                results = json.loads(out_path.read_text()) if out_path.is_file() else {}
                results[key] = {"performance": merged.performance,
                                "count_error_every_stimulus": merged.count_error(every_stimulus=True),
                                "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                                "per_stimulus": merged.per_stimulus()}
                ratios = " ".join(f"{k}:{v['count_ratio']:.2f}" if v["count_ratio"] is not None else f"{k}:inf"
                                  for k, v in merged.per_stimulus().items())
                print(f"{key}: held-out P {merged.performance:.3f}, |ln count ratio| (all) "
                      f"{results[key]['count_error_every_stimulus']:.3f} [{ratios}] "
                      f"({results[key]['wall_s']:.0f} s wall, {results[key]['cpu_s']:.0f} s CPU)", flush=True)
                out_path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
