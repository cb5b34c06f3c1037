"""Split-half study of the gru readout's threshold rule on held-out training data (embedded).

For fitted models pickled by ``bench_gru_variants.py --save``: the held-out part of the
training window (the last 20 %, 31.2-39 s) is cut in two halves; the readout is chosen on one
half and scored on the other (both ways), with two threshold rules:

- ``gamma``: the threshold (with smoothing and gap) of the highest Gamma/R (the entry's rule);
- ``count``: per (smoothing, gap), the threshold at which the predicted count equals the
  recorded mean count, the (smoothing, gap) then chosen by Gamma/R.

Prints one JSON line per model. No test data is read.

Usage::

    python benchmarks/bench_gru_readout.py /tmp/A0.pkl /tmp/A1.pkl ...
"""
from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np

import qsnmc
from qsnmc_plugins.gru.network import ensemble_hazard
from qsnmc_plugins.gru.inputs import window_bins
from qsnmc_plugins.hazard.heldout import HeldOutScorer
from qsnmc_plugins.hazard.readout import (Readout, ReadoutSettings, _peaks, _smooth, choose_readout,
                                          spikes_from_hazard)

ROOT = Path(__file__).resolve().parents[1]


def count_readout(hz, t0, bin_s, scorer, win, n_rec: float, grid: ReadoutSettings) -> Readout:
    best = None
    for sd in grid.readout_smoothing_ms:
        sm = _smooth(hz, sd * 1e-3 / bin_s)
        for gap_ms in grid.readout_refractory_ms:
            heights = np.sort(sm[_peaks(sm, int(round(gap_ms * 1e-3 / bin_s)), 1e-6)])[::-1]
            if heights.size == 0:
                continue
            th = float(heights[min(len(heights) - 1, max(0, int(round(n_rec)) - 1))])
            r = Readout(float(sd), th, float(gap_ms))
            p = scorer({"X": spikes_from_hazard(hz, t0, bin_s, r, win)})
            if best is None or p > best[0]:
                best = (p, r)
    return best[1]


def main() -> None:
    train = qsnmc.load_challenge(str(ROOT / "reference_data" / "embedded")).training_data()
    s = train.stimuli[0]
    lo, hi = s.window_s
    start = lo + 0.8 * (hi - lo)
    halves = [(start, (start + hi) / 2), ((start + hi) / 2, hi)]
    for path in sys.argv[1:]:
        model = pickle.loads(Path(path).read_bytes())
        sc, st = model.scaling, model.settings
        x = sc.inputs(s.current_pA, s.dt_s)
        parts = []
        for w in halves:
            spikes = tuple(t[(t >= w[0]) & (t < w[1])] for t in s.spike_times_s)
            stim = qsnmc.Stimulus("X", s.dt_s, s.current_pA, w, len(spikes))
            held = (qsnmc.HeldOutStimulus(stim, spikes, np.zeros((len(spikes), 1))),)
            a, b = window_bins(w, sc.bin_s)
            hz = ensemble_hazard(model.nets, x, a, b, model._seq_bins, st.burn_bins, model._device)
            parts.append(dict(hz=hz, t0=a * sc.bin_s, win=w, scorer=HeldOutScorer(held, train.delta_s),
                              n_rec=float(np.mean([len(t) for t in spikes]))))
        out = {"model": path}
        for rule in ("gamma", "count"):
            scores, ratios = [], []
            for i, j in ((0, 1), (1, 0)):
                p, q = parts[i], parts[j]
                if rule == "gamma":
                    r, _ = choose_readout({"X": p["hz"]}, {"X": p["t0"]}, sc.bin_s, p["scorer"], {"X": p["win"]}, st)
                else:
                    r = count_readout(p["hz"], p["t0"], sc.bin_s, p["scorer"], p["win"], p["n_rec"], st)
                pred = spikes_from_hazard(q["hz"], q["t0"], sc.bin_s, r, q["win"])
                scores.append(q["scorer"]({"X": pred}))
                ratios.append(len(pred) / q["n_rec"])
            out[rule] = {"gamma_over_r_other_half": scores, "mean": float(np.mean(scores)),
                         "count_ratio_other_half": ratios}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
