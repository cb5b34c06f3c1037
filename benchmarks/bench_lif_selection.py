"""The LIF's selection rule scored out of sample (never the test window).

The whole fit (membrane on the first part, grid scored on the held-out rest, membrane refit) runs on
the first part of every training window; :func:`qsnmc.validate_model` scores the last ``outer`` share.
Per challenge, outer share and ``heldout_fraction``: P and the count error. Writes
``results/lif_selection.json``.

Run: ``python benchmarks/bench_lif_selection.py`` (challenges: embedded and qsnmc2007a).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import qsnmc
from qsnmc_plugins.baselines.lif import LeakyIntegrateAndFire

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("challenges", nargs="*", default=["embedded", "qsnmc2007a"])
    parser.add_argument("--outer", type=float, nargs="+", default=[0.2, 0.25, 0.3], help="held-out shares scored")
    parser.add_argument("--heldout-fraction", type=float, nargs="+", default=[0.25, 0.4])
    args = parser.parse_args()
    rows = []
    for name in args.challenges:
        folder = qsnmc.challenge_dir(name)
        if not (folder / "manifest.json").is_file():
            print(f"{name}: not imported, skipped")
            continue
        train = qsnmc.load_challenge(folder).training_data()
        for outer in args.outer:
            fold = train.time_split(outer)
            for fraction in args.heldout_fraction:
                score = qsnmc.validate_model(LeakyIntegrateAndFire(seed=0, heldout_fraction=fraction), fold)
                rows.append({"challenge": name, "outer": outer, "heldout_fraction": fraction,
                             "performance": score.performance, "count_error": score.count_error()})
                print(f"{name} outer {outer:g} heldout_fraction {fraction:g}: P {score.performance:.4f}, "
                      f"count error {score.count_error():.3f}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lif_selection.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
