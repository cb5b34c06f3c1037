"""Regression guard for the rate failures on the QSNMC 2007 cell (issue 15): MAT, ARX and LIF,
fitted on the real recordings, predict each training stimulus' spike count (whole 0-22 s
window) within a stated factor of the recorded mean.

Skipped where ``../shared/qsnmc2007/challengeA`` is absent. Reduced fits keep it short (budget
0.1; the MAT with its 2-kernel structure only, not the default choice between 2 and 3); the
full-budget figures are in benchmarks/README.md ("MAT and ARX").
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from qsnmc import Stimulus, load_challenge
from qsnmc.challenges.qsnmc2007 import import_qsnmc2007

from qsnmc_plugins.arx.model import ArxModel
from qsnmc_plugins.baselines.lif import LeakyIntegrateAndFire
from qsnmc_plugins.mat.model import MATModel

os.environ.setdefault("QSNMC_PROGRESS", "0")

SHARED_2007 = Path(__file__).resolve().parents[1].parent / "shared" / "qsnmc2007" / "challengeA"
#: the stimuli whose training-window R (Delta 2 ms) reaches the 0.3 floor: the ones Gamma/R scores
RELIABLE = ("00", "04", "05", "11")
#: allowed factor between predicted and recorded counts on the reliable stimuli, per model, with
#: stated exceptions. Before issue 15 the LIF fired 3.9x the recorded count on test stimulus 00
#: and the AdEx 6-13x. For ARX and LIF the low-R stimuli 06, 08, 09, 12 are not guarded (both
#: are silent or nearly so on 08 and 12: one threshold cannot serve every stimulus' mean).
FACTOR = 2.0
#: models guarded on every stimulus: the MAT, silent on 08 and 12 before issue 15, now fires
#: there (measured 1.32x and 0.68x at this budget)
EVERY_STIMULUS = {"mat"}
#: known failure, measured: the MAT fires 4.7x the count of 05 at this budget (7-10x at budget 1)
EXCEPTIONS = {("mat", "05"): 6.0}
MODELS = {"mat": (MATModel, {"n_kernels": 2}), "arx": (ArxModel, {}), "lif": (LeakyIntegrateAndFire, {})}


@pytest.fixture(scope="module")
def train_2007(tmp_path_factory):
    if not (SHARED_2007 / "training").is_dir():
        pytest.skip(f"the QSNMC 2007 Challenge A recordings are not at {SHARED_2007}")
    return load_challenge(import_qsnmc2007(SHARED_2007, tmp_path_factory.mktemp("c07") / "qsnmc2007a")).training_data()


@pytest.mark.slow  # three reduced fits on 8 x 22 s of recordings: about 15 s CPU
@pytest.mark.parametrize("name", sorted(MODELS))
def test_predicted_counts_follow_the_recorded_ones(train_2007, name):
    cls, kwargs = MODELS[name]
    model = cls(seed=0, budget=0.1, **kwargs)
    model.fit(train_2007)
    for s in train_2007.stimuli:
        predicted = model.predict(Stimulus(s.name, s.dt_s, s.current_pA, s.window_s, s.n_repetitions))
        recorded = np.mean([t.size for t in s.spike_times_s])
        ratio = (np.size(predicted) + 1.0) / (recorded + 1.0)
        print(f"{name} {s.name}: {np.size(predicted)} predicted, {recorded:.1f} recorded, ratio {ratio:.2f}")
        if s.name in RELIABLE or name in EVERY_STIMULUS:
            factor = EXCEPTIONS.get((name, s.name), FACTOR)
            assert 1.0 / factor <= ratio <= factor, f"{name} on {s.name}: {np.size(predicted)} vs {recorded}"
