"""Benchmark of the ``arx`` model on the embedded challenge at the default budget.

Measures fit time, prediction time, and Gamma / Gamma/R on the training window
(final model), the held-out part of the training window (model fitted on the first
80 % only) and the hidden test window. Writes ``benchmarks/results/arx.json``.

    python benchmarks/bench_arx.py [--budget 1.0] [--param KEY=VALUE ...]

``--param`` sets a field of ``ArxSettings`` (a JSON value, e.g. ``--param count_penalty=0.3``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--challenge", default=str(ROOT / "reference_data" / "embedded"))
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the model (JSON value), repeatable")
    args = parser.parse_args()
    params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}

    from qsnmc import load_challenge
    from qsnmc import evaluate_in_process
    from qsnmc_plugins.arx.model import ArxModel

    challenge = load_challenge(args.challenge)
    model = ArxModel(seed=0, budget=args.budget, **params)
    run = evaluate_in_process(model, challenge)
    record, score, fit_s, predict_s = run.record, run.score, run.fit_s, run.predict_s
    val = record["details"]["validation"]
    result = {
        "model": "arx",
        "challenge": challenge.name,
        "budget": args.budget,
        "params": params,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "training_gamma": val["training_gamma"],
        "training_gamma_over_R": val["training_gamma_over_R"],
        "held_out_gamma": val["held_out_gamma"],
        "held_out_gamma_over_R": record["held_out"]["performance"],
        "test_gamma": score.gamma,
        "test_gamma_over_R": score.performance,
        "test_error": score.error,
        "test_spikes_predicted": {k: int(len(v)) for k, v in run.predictions.items()},
        "fit_record": record,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "note": "timings on shared cores are inflated by contention"},
    }
    out = ROOT / "benchmarks" / "results" / "arx.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out)
    print(
        f"arx: fit {fit_s:.1f} s, predict {predict_s:.3f} s | Gamma/R training {result['training_gamma_over_R']:.3f}, "
        f"held-out {result['held_out_gamma_over_R']:.3f}, test {result['test_gamma_over_R']:.3f} "
        f"+- {result['test_error']:.3f} (Gamma {result['test_gamma']:.3f}) -> {out.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
