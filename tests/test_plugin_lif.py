"""The LIF baseline's fit: membrane, threshold, reset and the latency to the recorded spike."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from qsnmc import Stimulus, load_challenge
from qsnmc_plugins.baselines.lif import LeakyIntegrateAndFire

os.environ.setdefault("QSNMC_PROGRESS", "0")


def _shifted(train, shift_s: float):
    """The same recordings with every recorded spike time moved later by ``shift_s`` (s)."""
    stimuli = tuple(dataclasses.replace(s, spike_times_s=tuple(t + shift_s for t in s.spike_times_s))
                    for s in train.stimuli)
    return dataclasses.replace(train, stimuli=stimuli)


def test_fitted_latency_follows_a_delay_of_the_recorded_spikes(data_dir):
    """The test LIF's recorded spikes are its threshold crossings; delayed by 3 ms, the fit's
    latency grows by 3 ms (within one grid step) and its predictions move with it."""
    train = load_challenge(data_dir / "challenges" / "synthetic-test").training_data()
    plain = LeakyIntegrateAndFire(seed=0)
    rec_plain = plain.fit(train)
    delayed = LeakyIntegrateAndFire(seed=0)
    rec_delayed = delayed.fit(_shifted(train, 0.003))
    assert rec_plain["fitted"]["latency_ms"] <= 3.0 + 1e-9  # room for the shift on the grid
    assert abs(rec_delayed["fitted"]["latency_ms"] - rec_plain["fitted"]["latency_ms"] - 3.0) <= 1.0 + 1e-9
    assert rec_delayed["held_out"]["performance"] > 0.5
    s = train.stimuli[0]
    stim = Stimulus(s.name, s.dt_s, s.current_pA, (2.0, 12.0), s.n_repetitions)
    pred = delayed.predict(stim)
    assert pred.size > 50 and np.all((pred >= 2.0) & (pred <= 12.0))
    assert max(delayed.settings.latencies_s) >= 0.006


def test_the_held_out_figure_is_the_one_the_choice_was_made_on(data_dir):
    """The grid is scored on the held-out part of each window: the recorded held-out P is the best
    candidate's, and the chosen latency is that candidate's; the membrane is refit on the whole window
    (the record says so), the threshold keeping its distance to E_L."""
    train = load_challenge(data_dir / "challenges" / "synthetic-test").training_data()
    model = LeakyIntegrateAndFire(seed=0, budget=0.3, n_thresholds=8)
    record = model.fit(train)
    best = record["candidates"][0]
    assert record["variant"] == "refit"
    assert record["held_out"]["performance"] == best["performance"]
    shift = record["fitted"]["e_leak_mV"] - record["details"]["searched_membrane"]["e_leak_mV"]
    assert record["fitted"]["threshold_mV"] == pytest.approx(best["choice"]["threshold_mV"] + shift)
    assert record["fitted"]["latency_ms"] == best["choice"]["latency_s"] * 1e3
    assert record["details"]["searched_membrane"]["tau_m_ms"] != record["fitted"]["tau_m_ms"]


def test_a_narrower_latency_grid_is_taken_through_the_constructor(data_dir):
    """Settings reach the fit: with the 3 ms delay and a latency grid ending at 1 ms, the fit
    chooses the grid's end; the fit record holds the settings used and the held-out score."""
    train = _shifted(load_challenge(data_dir / "challenges" / "synthetic-test").training_data(), 0.003)
    model = LeakyIntegrateAndFire(seed=0, budget=0.3, latencies_s=[0.0, 0.001], n_thresholds=8)
    record = model.fit(train)
    assert record["settings"]["latencies_s"] == [0.0, 0.001] and record["settings"]["n_thresholds"] == 8
    assert record["fitted"]["latency_ms"] == 1.0
    assert record["held_out"]["per_stimulus"] and record["held_out"]["split"].startswith("time split")
