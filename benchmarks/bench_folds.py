"""A model's settings scored on held-out training data (never the test window): time split and leave-one-stimulus-out.

For each challenge (embedded, qsnmc2007a) and each setting given as JSON keyword arguments,
fit a fresh model per fold and score the held-out stimuli with the core's
:class:`qsnmc.ValidationScore`: held-out P (Gamma/R per stimulus with R >= 0.3, equal
weights), the mean |ln| spike-count ratio over every held-out stimulus, and per-stimulus
count ratios. Folds: the last 25 % of each training window (``time``), and on a challenge
with several stimuli each stimulus left out whole (``stimulus``). Appends to
``results/folds_<model>.json``.

Any built-in model works: it is built through its constructor as
``Model(seed=0, budget=..., **params, **setting)``, where ``--param KEY=VALUE`` (VALUE read
as JSON, else kept as text) applies to every setting of the run and is recorded in the
result's key. A name that is not one of the model's settings, or a value of the wrong type,
is refused before any fit.

Run: ``python benchmarks/bench_folds.py mat '{"n_kernels": 3}' --budget 0.25 --split stimulus``
or ``python benchmarks/bench_folds.py gif '{"count_penalty": 0.3}' --param voltage_coupling=false``
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import qsnmc
from qsnmc.settings import parse_overrides as parse_params
from qsnmc.harness.plugins import find_sources, load_models

RESULTS = Path(__file__).parent / "results"


def builtin_models() -> dict:
    """Every built-in model's factory (its class), by name."""
    models = {}
    for source in find_sources(None):
        if source.kind == "builtin":
            models.update(load_models(source))
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = builtin_models()
    parser.add_argument("model", choices=sorted(models))
    parser.add_argument("settings", nargs="*", default=["{}"], help="JSON keyword arguments, one setting each")
    parser.add_argument("--challenge", action="append", help="default: embedded and qsnmc2007a")
    parser.add_argument("--split", action="append", choices=["time", "stimulus"], help="default: both")
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting (JSON value) passed to the model's constructor in every run")
    args = parser.parse_args()
    cls = models[args.model]
    overrides = parse_params(args.param)
    settings = [{**overrides, **json.loads(setting)} for setting in args.settings]
    for kwargs in settings:  # a wrong name or value fails here, before any fit
        try:
            cls(seed=0, budget=args.budget, **kwargs)
        except (TypeError, ValueError) as exc:
            raise SystemExit(str(exc)) from None
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
            for setting, kwargs in zip(args.settings, settings):
                t0, c0 = time.perf_counter(), time.process_time()
                scores = [qsnmc.validate_model(cls(seed=0, budget=args.budget, **kwargs), f) for f in folds]
                merged = scores[0]
                for sc in scores[1:]:
                    merged = merged.merged(sc)
                key = f"{name}/{split}/budget {args.budget:g}/{json.dumps(json.loads(setting), sort_keys=True)}"
                if overrides:
                    key += f"/{json.dumps(overrides, sort_keys=True)}"
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
