"""Final test-window figures of models whose settings are fixed (read once, after every choice).

For each model and challenge: fit in this process (seed 0, budget 1, one BLAS thread), predict
the test stimuli, score with the harness's scoring (the same Gamma/R as ``qsnmc run``), and
write P, per test stimulus Gamma/R and predicted / recorded spike counts, and the fit and
prediction times (wall and CPU) to ``results/test_window_<model>_<challenge>.json``.

Run: ``python benchmarks/bench_test_window.py mat arx lif --challenge embedded --challenge qsnmc2007a``
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

import qsnmc
from qsnmc_plugins.arx.model import ArxModel
from qsnmc_plugins.baselines.lif import LeakyIntegrateAndFire
from qsnmc_plugins.mat.model import MATModel

MODELS = {"mat": MATModel, "arx": ArxModel, "lif": LeakyIntegrateAndFire}
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", choices=sorted(MODELS))
    parser.add_argument("--challenge", action="append")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=1.0)
    args = parser.parse_args()
    os.environ.setdefault("QSNMC_PROGRESS", "0")
    for name in args.challenge or ["embedded", "qsnmc2007a"]:
        challenge = qsnmc.load_challenge(qsnmc.challenge_dir(name))
        for m in args.models:
            run = qsnmc.evaluate_in_process(MODELS[m](seed=args.seed, budget=args.budget), challenge)
            stimuli = {s.stimulus: {"gamma_over_r": float(s.gammas.mean() / s.reliability), "n_predicted": s.n_predicted,
                                    "n_recorded": s.n_recorded, "count_ratio": s.n_predicted / s.n_recorded}
                       for s in run.score.stimuli}
            out = {"model": m, "challenge": name, "seed": args.seed, "budget": args.budget,
                   "performance": run.score.performance, "error": run.score.error, "stimuli": stimuli,
                   "fit_s": run.fit_s, "fit_cpu_s": run.fit_cpu_s, "predict_s": run.predict_s,
                   "predict_cpu_s": run.predict_cpu_s, "note": "2 shared cores, heavily contended: wall times inflated"}
            (RESULTS / f"test_window_{m}_{name}.json").write_text(json.dumps(out, indent=1, default=float))
            per = " ".join(f"{k}: {v['gamma_over_r']:.3f} ({v['count_ratio']:.2f}x)" for k, v in stimuli.items())
            print(f"{m} on {name}: P {run.score.performance:.3f} ± {run.score.error:.3f} | {per} | fit {run.fit_s:.1f} s "
                  f"wall, {run.fit_cpu_s:.1f} s CPU; predict {run.predict_s:.2f} s", flush=True)


if __name__ == "__main__":
    main()
