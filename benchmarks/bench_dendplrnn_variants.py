"""dendPLRNN variants against the default fit, on the embedded challenge (budget 1).

Each variant overrides settings of :class:`qsnmc_plugins.dendplrnn.model.DendPLRNNSettings`
(a JSON object of name -> value) through the model's constructor, fits with one seed, and appends
one line per fit to ``benchmarks/results/dendplrnn_variants.jsonl``: the figure a choice may use
(held-out P over the last 20 % of the training window, per predictor) and the test-window
Gamma/R, an outcome only. (Rows before 2026-11-30 evening came from the earlier model, with a
whole-window selection score; rows before 2026-12-02 name the settings by their former module
constants, e.g. ``MEMBERS`` for ``members``.)

Run, for example::

    python benchmarks/bench_dendplrnn_variants.py m32 0 '{"members": [[25, 32, 8], [0, 32, 8], [25, 32, 8], [0, 32, 8]]}'
    python benchmarks/bench_dendplrnn_variants.py long 0 '{"steps": 1200}'
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from qsnmc import load_challenge
from qsnmc.scoring.evaluation import score_predictions
from qsnmc_plugins.dendplrnn.model import DendPLRNNModel

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "dendplrnn_variants.jsonl"


def main() -> None:
    tag, seed = sys.argv[1], int(sys.argv[2])
    overrides = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    ch = load_challenge(ROOT / "reference_data" / "embedded")
    model = DendPLRNNModel(seed=seed, budget=1.0, **overrides)
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
        "heldout_P_by_predictor": {c["choice"]["predictor"]: c["objective"] for c in rec["candidates"]},
        "chosen_predictor": rec["fitted"]["chosen_predictor"],
        "heldout_gamma_over_R": rec["held_out"]["performance"],
        "test_gamma_over_R": test.performance,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
