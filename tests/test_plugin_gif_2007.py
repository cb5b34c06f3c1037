"""The GIF on the recorded 2007 cell (``../shared/qsnmc2007/challengeA``; skipped where absent):
a regression guard against the rate failures of issue 15 (tonic firing, silence).

A reduced fit (budget 0.1: the default kernel basis, latencies 0 and 3 ms) on the training
window 0-22 s of all eight stimuli; every training stimulus' window is then predicted from the
current alone (a free run from the protocol's start) and its spike count compared with the
recorded mean count per repetition.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from qsnmc import Stimulus, load_challenge

from qsnmc_plugins.gif.model import GIFModel
from qsnmc_plugins.gif.readout import STOCHASTIC

os.environ.setdefault("QSNMC_PROGRESS", "0")

SHARED_2007 = Path(__file__).resolve().parents[1].parent / "shared" / "qsnmc2007" / "challengeA"
#: the model's own rate (one sampled train per repetition) on every training stimulus
STOCHASTIC_FACTOR = 2.0
#: the chosen readout on the stimuli whose held-out R reaches the floor (00, 04, 05, 11): the
#: deterministic readout over-fires the strongly driven ones (about 1.6x) and is silent or
#: nearly so on the weakly driven 08 and 12 (R near 0), which are left out of this bound
CHOSEN_FACTOR = 2.0


@pytest.fixture(scope="module")
def fitted_2007(tmp_path_factory):
    if not (SHARED_2007 / "training").is_dir():
        pytest.skip(f"the QSNMC 2007 Challenge A recordings are not at {SHARED_2007}")
    from qsnmc.challenges.qsnmc2007 import import_qsnmc2007

    train = load_challenge(import_qsnmc2007(SHARED_2007, tmp_path_factory.mktemp("gif2007") / "qsnmc2007a")).training_data()
    model = GIFModel(seed=0, budget=0.1)
    record = model.fit(train)
    return train, model, record


def _counts(model: GIFModel, train) -> dict[str, tuple[float, float]]:
    out = {}
    for s in train.stimuli:
        pred = model.predict(Stimulus(s.name, s.dt_s, s.current_pA, s.window_s, s.n_repetitions))
        n_pred = float(np.mean([t.size for t in pred])) if isinstance(pred, list) else float(pred.size)
        out[s.name] = (n_pred, float(np.mean([t.size for t in s.spike_times_s])))
    return out


def test_gif_sampled_rate_matches_every_training_stimulus_of_the_2007_cell(fitted_2007):
    train, model, _ = fitted_2007
    chosen = model.readout
    model.readout = STOCHASTIC
    try:
        counts = _counts(model, train)
    finally:
        model.readout = chosen
    for name, (n_pred, n_rec) in counts.items():
        assert n_rec / STOCHASTIC_FACTOR <= n_pred <= n_rec * STOCHASTIC_FACTOR, (name, n_pred, n_rec)


def test_gif_chosen_readout_count_on_the_reliable_2007_stimuli(fitted_2007):
    train, model, record = fitted_2007
    reliable = [name for name, s in record["held_out"]["per_stimulus"].items() if s["included"]]
    assert set(reliable) == {"00", "04", "05", "11"}
    counts = _counts(model, train)
    for name in reliable:
        n_pred, n_rec = counts[name]
        assert n_rec / CHOSEN_FACTOR <= n_pred <= n_rec * CHOSEN_FACTOR, (name, n_pred, n_rec)
    assert len(record["held_out"]["per_stimulus"]) == len(train.stimuli)  # every held-out stimulus reported
    for row in record["held_out"]["per_stimulus"].values():
        assert {"gamma_over_r", "n_predicted", "n_recorded", "count_ratio"} <= set(row)
