"""LIF count penalty chosen on held-out training data (never the test window).

For each challenge and each ``count_penalty`` of the LIF's ``param_grid``: fit on the first
75 % of every training window and score the last 25 % (time split), and, where a challenge
has several training stimuli, leave each stimulus out in turn (stimulus split). Scores are
the core's :class:`qsnmc.ValidationScore` (Gamma/R per held-out stimulus with R >= 0.3,
equal weights) and its mean |log| spike-count ratio. Writes ``results/lif.json``.

Run: ``python benchmarks/bench_lif.py [CHALLENGE ...]`` (default: embedded qsnmc2007a).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import qsnmc
from qsnmc_plugins.baselines.lif import LeakyIntegrateAndFire

OUT = Path(__file__).parent / "results" / "lif.json"


def main(names: list[str]) -> None:
    results = {}
    for name in names:
        folder = qsnmc.challenge_dir(name)
        if not (folder / "manifest.json").is_file():
            print(f"{name}: not imported, skipped")
            continue
        train = qsnmc.load_challenge(folder).training_data()
        splits = {"time": [train.time_split(0.25)]}
        if len(train.stimuli) > 1:
            splits["stimulus"] = train.stimulus_folds()
        for penalty in LeakyIntegrateAndFire.param_grid["count_penalty"]:
            for split, folds in splits.items():
                t0 = time.perf_counter()
                scores = [qsnmc.validate_model(LeakyIntegrateAndFire(seed=0, count_penalty=penalty), f) for f in folds]
                merged = scores[0]
                for sc in scores[1:]:
                    merged = merged.merged(sc)
                key = f"{name}/{split}/{penalty:g}"
                results[key] = {"performance": merged.performance, "log_count_error": merged.log_count_error,
                                "seconds": time.perf_counter() - t0,
                                "count_ratio": {s.stimulus: s.count_ratio for s in merged.stimuli if s.included}}
                print(f"{key}: held-out P {merged.performance:.3f}, |log count ratio| {merged.log_count_error:.3f} "
                      f"({results[key]['seconds']:.0f} s)", flush=True)
    OUT.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or ["embedded", "qsnmc2007a"])
