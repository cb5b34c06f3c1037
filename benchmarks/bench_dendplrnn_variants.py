"""dendPLRNN variants against the default fit, on the embedded challenge (budget 1).

Each variant overrides module-level settings of ``qsnmc_plugins.dendplrnn.model`` (JSON
object of name -> value), fits with one seed, and appends one line per fit to
``benchmarks/results/dendplrnn_variants.jsonl``: the figure a choice may use (held-out P over
the last 20 % of the training window, per predictor) and the test-window Gamma/R, an outcome only.
(Rows before 2026-11-30 evening came from the earlier model, with a whole-window selection score.)

Run, for example::

    python benchmarks/bench_dendplrnn_variants.py m32 0 '{"MEMBERS": [[25, 32, 8], [0, 32, 8], [25, 32, 8], [0, 32, 8]]}'
    python benchmarks/bench_dendplrnn_variants.py long 0 '{"STEPS": 1200}'
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import qsnmc_plugins.dendplrnn.model as dend
from qsnmc import load_challenge
from qsnmc.scoring.evaluation import score_predictions

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "dendplrnn_variants.jsonl"


def main() -> None:
    tag, seed = sys.argv[1], int(sys.argv[2])
    overrides = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    for name, value in overrides.items():
        if not hasattr(dend, name):
            raise SystemExit(f"qsnmc_plugins.dendplrnn.model has no setting {name!r}")
        setattr(dend, name, tuple(tuple(v) if isinstance(v, list) else v for v in value) if isinstance(value, list) else value)
    ch = load_challenge(ROOT / "reference_data" / "embedded")
    model = dend.DendPLRNNModel(seed=seed, budget=1.0)
    c0 = time.process_time()
    rec = model.fit(ch.training_data())
    cpu = time.process_time() - c0
    stim = ch.test_stimuli()[0]
    test = score_predictions(ch, {stim.name: model.predict(stim)})
    row = {
        "variant": tag,
        "seed": seed,
        "overrides": overrides,
        "fit_cpu_s": cpu,
        "heldout_P_by_predictor": rec["heldout_P_by_predictor"],
        "chosen_predictor": rec["chosen_predictor"],
        "heldout_gamma_over_R": rec["heldout_gamma_over_R"],
        "test_gamma_over_R": test.performance,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
