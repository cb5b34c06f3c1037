"""A model's spike-count penalty chosen on held-out training data (never the test window).

For each challenge and each ``count_penalty`` of the model's ``param_grid`` (LIF, AdEx): fit
on the first 75 % of every training window and score the last 25 % (time split), and with
``--stimulus-split``, where a challenge has several training stimuli, leave each stimulus out
in turn. Scores are the core's :class:`qsnmc.ValidationScore` (Gamma/R per held-out stimulus
with R >= 0.3, equal weights) and its mean |log| spike-count ratio. Writes
``results/count_penalty_<model>.json``.

Run: ``python benchmarks/bench_count_penalty.py lif --stimulus-split`` or
``python benchmarks/bench_count_penalty.py adex`` (challenges: embedded and qsnmc2007a).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import qsnmc
from qsnmc_plugins.adex.model import AdExModel
from qsnmc_plugins.baselines.lif import LeakyIntegrateAndFire

MODELS = {"lif": LeakyIntegrateAndFire, "adex": AdExModel}
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("challenges", nargs="*", default=["embedded", "qsnmc2007a"])
    parser.add_argument("--stimulus-split", action="store_true", help="also leave each training stimulus out")
    parser.add_argument("--budget", type=float, default=1.0)
    args = parser.parse_args()
    cls = MODELS[args.model]
    results = {}
    for name in args.challenges:
        folder = qsnmc.challenge_dir(name)
        if not (folder / "manifest.json").is_file():
            print(f"{name}: not imported, skipped")
            continue
        train = qsnmc.load_challenge(folder).training_data()
        splits = {"time": [train.time_split(0.25)]}
        if args.stimulus_split and len(train.stimuli) > 1:
            splits["stimulus"] = train.stimulus_folds()
        for penalty in cls.param_grid["count_penalty"]:
            for split, folds in splits.items():
                t0 = time.perf_counter()
                scores = [qsnmc.validate_model(cls(seed=0, budget=args.budget, count_penalty=penalty), f)
                          for f in folds]
                merged = scores[0]
                for sc in scores[1:]:
                    merged = merged.merged(sc)
                key = f"{name}/{split}/{penalty:g}"
                results[key] = {"performance": merged.performance, "log_count_error": merged.log_count_error,
                                "seconds": time.perf_counter() - t0, "budget": args.budget,
                                "count_ratio": {s.stimulus: s.count_ratio for s in merged.stimuli if s.included}}
                print(f"{key}: held-out P {merged.performance:.3f}, |log count ratio| {merged.log_count_error:.3f} "
                      f"({results[key]['seconds']:.0f} s)", flush=True)
    (RESULTS / f"count_penalty_{args.model}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
