"""Benchmark of the ``ddf`` model on the embedded challenge at the default budget.

Measures fit time, prediction time of the test window, and Gamma/R on
- the training part of the training window (a free run from rest over 0-39 s, scored on
  the part the chosen map was fitted on),
- the held-out end of the training window (from the fit record: a free run warm-started
  from the recording, as used to choose the structure),
- the hidden test window (39-60 s).

Run: ``python benchmarks/bench_ddf.py [--budget 1.0] [--param KEY=VALUE ...]`` (``--param`` sets a
field of ``DDFSettings``, a JSON value); writes ``benchmarks/results/ddf.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import warnings
from pathlib import Path

import numpy as np

from qsnmc import load_challenge
from qsnmc import Stimulus
from qsnmc import evaluate_in_process
from qsnmc import clip_to_window, coincidence_factor, intrinsic_reliability
from qsnmc_plugins.ddf.model import DDFModel

ROOT = Path(__file__).resolve().parents[1]
CHALLENGE = ROOT / "reference_data" / "embedded"
OUT = ROOT / "benchmarks" / "results" / "ddf.json"


def gamma_over_r(recorded: list[np.ndarray], predicted: np.ndarray, start: float, stop: float, delta: float) -> float:
    """Mean Gamma / R of one predicted train against the recordings, inside ``[start, stop]`` (s)."""
    rec = [clip_to_window(r, (start, stop)) for r in recorded]
    pred = clip_to_window(predicted, (start, stop))
    g = np.mean([coincidence_factor(r, pred, delta, duration=stop - start) for r in rec])
    return float(g / intrinsic_reliability(rec, delta, duration=stop - start))


def main(seed: int = 0, budget: float = 1.0, params: dict | None = None) -> dict:
    challenge = load_challenge(CHALLENGE)
    train = challenge.training_data()
    model = DDFModel(seed=seed, budget=budget, **(params or {}))
    run = evaluate_in_process(model, challenge)
    record, test, fit_s, predict_s = run.record, run.score, run.fit_s, run.predict_s
    test_runaway = dict(model.last_forecast)

    stim = train.stimuli[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        replay = model.predict(Stimulus("training-replay", stim.dt_s, stim.current_pA, stim.window_s, stim.n_repetitions))
    details = record["details"]
    fit_stop = details["heldout_start_s"][stim.name]
    result = {
        "model": "ddf",
        "challenge": challenge.name,
        "budget": budget,
        "seed": seed,
        "params": params or {},
        "fit_time_s": fit_s,
        "predict_time_s": predict_s,
        "test_window_s": list(challenge.test_stimuli()[0].window_s),
        "training_gamma_over_r": gamma_over_r(list(stim.spike_times_s), replay, stim.window_s[0], fit_stop, train.delta_s),
        "training_part_s": [stim.window_s[0], fit_stop],
        "heldout_gamma_over_r": record["held_out"]["performance"] if record["held_out"] else None,
        "heldout_part_s": [fit_stop, stim.window_s[1]],
        "test_gamma_over_r": test.performance,
        "test_error": test.error,
        "test_gamma": test.gamma,
        "test_predicted_spikes": int(sum(len(p) for p in run.predictions.values())),
        "test_recorded_spikes_rep0": int(len(challenge.test_recordings(stim.name)[0])),
        "test_forecast": test_runaway,
        "fitted": record["fitted"],
        "model_step_ms": details["model_step_ms"],
        "seeds_per_candidate": details["seeds_per_candidate"],
        "refitted_on_whole_window": details["refitted_on_whole_window"],
        "refit_heldout_gamma_over_r_in_sample": details["refit_heldout_gamma_over_r_in_sample"],
        "embedding_estimates": details["embedding_estimates"],
        "candidates": record["candidates"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "note": "2 shared cores, contended"},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the model (JSON value), repeatable")
    args = parser.parse_args()
    res = main(args.seed, args.budget, {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)})
    keys = ("refitted_on_whole_window", "fit_time_s", "predict_time_s", "training_gamma_over_r", "heldout_gamma_over_r",
            "test_gamma_over_r", "test_error")
    print(json.dumps({k: res[k] for k in keys} | {"fitted": res["fitted"]}, indent=1))
