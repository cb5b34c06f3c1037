"""Time the official scoring: one model against the 13 repetitions of the embedded challenge.

Run: ``python benchmarks/bench_scoring.py``; writes ``benchmarks/results/scoring.json``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from qsnmc import load_challenge
from qsnmc.challenges.datadir import embedded_challenge_dir
from qsnmc.scoring.evaluation import score_predictions
from qsnmc import coincidence_factor, intrinsic_reliability

OUT = Path(__file__).parent / "results" / "scoring.json"


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ch = load_challenge(embedded_challenge_dir())
    stim = ch.test_stimuli()[0]
    recs = ch.test_recordings(stim.name)
    rng = np.random.default_rng(0)
    # a model train: the first recording jittered by 3 ms, 10 % of spikes dropped
    kept = recs[0][rng.random(recs[0].size) > 0.1]
    pred = np.unique(kept + rng.normal(0, 0.003, kept.size))
    pred = pred[(pred >= stim.window_s[0]) & (pred <= stim.window_s[1])]
    dur = stim.duration_s
    results = {
        "spikes_per_recording": int(np.mean([r.size for r in recs])),
        "one_gamma_ms": 1e3 * best_of(lambda: coincidence_factor(recs[0], pred, duration=dur), 50),
        "reliability_13_reps_ms": 1e3 * best_of(lambda: intrinsic_reliability(recs, duration=dur)),
        "score_one_model_13_reps_with_bootstrap_ms": 1e3 * best_of(lambda: score_predictions(ch, {stim.name: pred}).error),
        "score_one_model_13_reps_no_bootstrap_ms": 1e3 * best_of(lambda: score_predictions(ch, {stim.name: pred}).performance),
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
