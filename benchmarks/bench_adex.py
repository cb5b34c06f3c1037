"""Benchmark of the ``adex`` plugin on the embedded challenge at the default budget.

Measures fit time, predict time (wall clock and this process' CPU time: the
simulation is single-threaded, and CPU time is less inflated when the machine is
shared), training / held-out Gamma and Gamma/R from the fit record, and the
test-window Gamma/R from the official scorer. Writes ``benchmarks/results/adex.json``.

Usage: ``python benchmarks/bench_adex.py [--budget 1.0] [--seed 0] [--challenge DIR] [--param KEY=VALUE ...]``
(``--param``: a setting of :class:`qsnmc_plugins.adex.settings.AdExSettings`, the value as JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--challenge", type=Path, default=ROOT / "reference_data" / "embedded")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adex.json")
    parser.add_argument("--param", nargs="*", default=[], help="KEY=VALUE settings (JSON values)")
    args = parser.parse_args()
    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}

    from qsnmc import load_challenge
    from qsnmc import evaluate_in_process
    from qsnmc_plugins.adex import AdExModel

    challenge = load_challenge(args.challenge)
    model = AdExModel(seed=args.seed, budget=args.budget, **params)

    run = evaluate_in_process(model, challenge)
    record, score = run.record, run.score
    fit_wall, fit_cpu, predict_wall, predict_cpu = run.fit_s, run.fit_cpu_s, run.predict_s, run.predict_cpu_s
    result = {
        "model": "adex",
        "challenge": challenge.name,
        "budget": args.budget,
        "seed": args.seed,
        "settings": params,
        "fit_seconds_wall": fit_wall,
        "fit_seconds_cpu": fit_cpu,
        "predict_seconds_wall": predict_wall,
        "predict_seconds_cpu": predict_cpu,
        "training_score": record["details"]["training_score"],
        "held_out_score": record["details"]["held_out_score"],
        "held_out_performance": record["held_out"]["performance"],
        "test_gamma": score.gamma,
        "test_performance": score.performance,
        "test_error": score.error,
        "test_reliability": [s.reliability for s in score.stimuli],
        "n_predicted_spikes": {k: int(len(v)) for k, v in run.predictions.items()},
        "fit_record": record,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1min_at_end": os.getloadavg()[0],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"adex: fit {fit_wall:.1f} s wall ({fit_cpu:.1f} s CPU), predict {predict_wall:.1f} s wall; "
        f"score training {result['training_score']:.3f}, held-out Gamma/R {result['held_out_performance']:.3f}, "
        f"test {score.performance:.3f} +- {score.error:.3f} (Gamma {score.gamma:.3f}); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
