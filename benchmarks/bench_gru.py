"""Benchmark of the gru model on a challenge (the embedded one by default), over several seeds.

Per seed: fit time, predict time, held-out Gamma/R (the last 20 % of the training
window, on which checkpoints, readout and the predictor are chosen: optimistic) of a
single network and of the ensemble, and the test-window Gamma/R of both and of the
predictor the fit chose; the device and the training throughput (bins per second).
Writes ``benchmarks/results/gru.json``.

Usage::

    python benchmarks/bench_gru.py [--seeds 0 1 2] [--budget 1.0] [--param cell=\"lstm\"] [--out PATH]

``--param KEY=VALUE`` (JSON values, repeatable) sets the model's settings. ``--fitted PATTERN``
(``{seed}`` in it) scores models already fitted and pickled by ``bench_gru_variants.py --save``
instead of refitting; their overrides must equal the current defaults (so each is the default
fit of its seed: fits are deterministic per seed), and the fit times and held-out figures come
from that script's JSON lines (``--variants``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from qsnmc import load_challenge, settings_record
from qsnmc.scoring.evaluation import score_predictions
from qsnmc_plugins.gru.model import GRUModel, GRUSettings

from qsnmc.settings import parse_overrides as parse_params

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of the gru model (VALUE as JSON); repeatable")
    ap.add_argument("--challenge", default=str(ROOT / "reference_data" / "embedded"))
    ap.add_argument("--fitted", default="", help="pickled default fits, e.g. /tmp/A{seed}.pkl")
    ap.add_argument("--variants", default=str(ROOT / "benchmarks" / "results" / "gru_variants.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gru.json"))
    args = ap.parse_args()

    ch = load_challenge(args.challenge)
    train = ch.training_data()
    stims = ch.test_stimuli()
    recorded_rate = {st.name: float(np.mean([len(s) for s in ch.test_recordings(st.name)]) / st.duration_s)
                     for st in stims}
    runs = []
    for seed in args.seeds:
        if args.fitted:
            model, record, fit_s, fit_cpu_s = _load_fitted(args.fitted.format(seed=seed), args.variants, seed)
        else:
            model = GRUModel(seed=seed, budget=args.budget, **parse_params(args.param))
            t0, c0 = time.perf_counter(), time.process_time()
            record = _summary(model.fit(train))
            fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        chosen = {st.name: model.predict(st) for st in stims}
        predict_s = time.perf_counter() - t0
        test = {}
        for name in model.predictors:
            spikes = chosen if name == record["chosen_predictor"] else {st.name: model.predict_with(st, name)
                                                                         for st in stims}
            test[name] = {"gamma_over_r": score_predictions(ch, spikes).performance,
                          "rate_hz": {st.name: len(spikes[st.name]) / st.duration_s for st in stims}}
        test_chosen = score_predictions(ch, chosen)
        run = {
            "seed": seed,
            "fit_time_s": fit_s,
            "fit_cpu_time_s": fit_cpu_s,
            "predict_time_s": predict_s,
            "device": record["device"],
            "training_samples_per_s": record["training"]["samples_per_s"],
            "chosen_predictor": record["chosen_predictor"],
            "readout": record["readout"],
            "heldout_gamma_over_r": record["heldout_gamma_over_r_by_predictor"],
            "test_gamma_over_r": {k: v["gamma_over_r"] for k, v in test.items()},
            "test_predicted_rate_hz": {k: v["rate_hz"] for k, v in test.items()},
            "test_chosen_gamma_over_r": test_chosen.performance,
            "test_chosen_error": test_chosen.error,
            "test_chosen_per_stimulus": [{"stimulus": r.stimulus, "gamma_over_r": float(np.mean(r.normalised)),
                                          "predicted_over_recorded_count": r.n_predicted / r.n_recorded}
                                         for r in test_chosen.stimuli],
            "settings": settings_record(model.settings),
            "member_best_steps": [m["best_step"] for m in record["members"]],
            "fitted_by": "bench_gru_variants.py (pickled)" if args.fitted else "this script",
        }
        runs.append(run)
        print(json.dumps({k: run[k] for k in ("seed", "fit_time_s", "predict_time_s", "chosen_predictor",
                                                "heldout_gamma_over_r", "test_gamma_over_r")}, indent=1), flush=True)
    chosen_p = [r["test_chosen_gamma_over_r"] for r in runs]
    result = {
        "model": "gru", "challenge": ch.name, "budget": args.budget, "params": parse_params(args.param),
        "test_recorded_rate_hz": recorded_rate,
        "runs": runs,
        "test_chosen_gamma_over_r_range": [min(chosen_p), max(chosen_p)],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "2 CPU cores shared with other jobs: wall times are inflated by contention"},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


def _summary(record: dict) -> dict:
    """The figures this benchmark reports, from a fit record."""
    return {"device": record["details"]["device"], "training": {"samples_per_s": record["details"]["samples_per_s"]},
            "chosen_predictor": record["fitted"]["chosen_predictor"], "readout": record["fitted"]["readout"],
            "heldout_gamma_over_r_by_predictor": {c["choice"]["predictor"]: c["objective"]
                                                  for c in record["candidates"]},
            "members": [{"best_step": s} for s in record["fitted"]["best_steps"]]}


def _load_fitted(path: str, variants: str, seed: int):
    """A pickled default fit of ``seed`` and its JSON line: (model, record-like dict, fit s, fit CPU s)."""
    import pickle

    defaults = GRUSettings()
    model = pickle.loads(Path(path).read_bytes())
    rows = [json.loads(line) for line in Path(variants).read_text().splitlines() if line.strip()]
    saved = str(Path(path).resolve())
    rows = [r for r in rows if r["seed"] == seed and r.get("saved", saved) == saved
            and all(_same(getattr(defaults, k.lower(), None), v) for k, v in r["overrides"].items())]
    if not rows:
        raise SystemExit(f"no line of {variants} describes a default fit of seed {seed} saved as {path}")
    row = rows[-1]  # a line whose overrides all equal the current defaults: a default fit
    if model.seed != seed or model.budget != 1.0:
        raise SystemExit(f"{path} is seed {model.seed}, budget {model.budget}")
    record = {"device": str(model._device), "training": {"samples_per_s": row["samples_per_s"]},
              "chosen_predictor": row["chosen"], "readout": row["readout"],
              "heldout_gamma_over_r_by_predictor": row["heldout"], "members": row["members"]}
    return model, record, row["fit_s"], row["fit_cpu_s"]


def _same(default, value) -> bool:
    """A setting's default equals an override read from JSON (lists for tuples; older rows' names in capitals)."""
    return json.loads(json.dumps(default)) == value


if __name__ == "__main__":
    main()
