"""The ``gif`` model: a generalized integrate-and-fire neuron fitted as Mensi et al. (2012) and
Pozzorini et al. (2015) fit cortical cells.

One candidate fit (training window only; every stimulus and repetition pooled): the recorded
spikes move back by a latency (the model's spike event is the threshold crossing, which
precedes the recorded 0 mV crossing); membrane and spike-triggered current eta by regression
of dV/dt outside spike windows (:mod:`~qsnmc_plugins.gif.subthreshold`; the raw current and two
short low-pass filtered copies drive it, with fitted gains), refitted on the voltage the model
itself simulates with the recorded spikes imposed (:mod:`~qsnmc_plugins.gif.voltage_fit`);
escape-rate threshold V_T, Delta_V, its spike-triggered movement gamma and, where chosen, a
coupling to the filtered voltage (inactivating GIF, :mod:`~qsnmc_plugins.gif.threshold`)
by convex maximum likelihood over every spike (:mod:`~qsnmc_plugins.gif.threshold_mle`).

:meth:`GIFModel.fit` runs three named steps: ``train.time_split(heldout_fraction)``;
:func:`~qsnmc_plugins.gif.search.search` (structure, latency and readout chosen on the held-out
part, merit = held-out P minus ``count_penalty`` times the mean |log| count ratio; below budget
0.5 the default structure at 0 or 3 ms only); the chosen structure and latency refitted on the
whole window, the chosen readout (:class:`~qsnmc_plugins.gif.readout.Readout`) predicting. On both
cells measured the deterministic level readout won by a wide margin over the stochastic one
(benchmarks/README.md, "gif").

Prediction simulates the whole protocol from its start, so a test window that continues a
training recording starts with the adaptation state the current built up before it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from qsnmc import (Candidate, Model, Stimulus, TrainingData, candidates_record, fit_record, held_out_record,
                   samples_per_step, settings_record)

from qsnmc_plugins.gif.readout import FittedGIF, Readout, readout_trains
from qsnmc_plugins.gif.search import fit_parameters, search
from qsnmc_plugins.gif.settings import GIFSettings


class GIFModel(Model):
    """Generalized integrate-and-fire neuron with spike-triggered current and moving escape-rate threshold."""

    name = "gif"
    description = ("GIF (Mensi 2012, Pozzorini 2015): membrane and eta by regression, threshold and gamma by convex ML; "
                   "optionally coupled to the voltage (iGIF, Mensi 2016)")
    Settings = GIFSettings
    variant = "refit"
    typical_fit_s = 70  # s at budget 1, one core, on the embedded cell: orders a run's jobs
    param_grid = {"count_penalty": [0.0, 0.1, 0.3, 1.0], "voltage_coupling": [False, True]}

    def __init__(self, seed: int = 0, budget: float = 1.0, **overrides: Any) -> None:
        super().__init__(seed, budget, **overrides)
        #: the fitted neuron (None before fit)
        self.gif: FittedGIF | None = None
        #: how spikes are read from it
        self.readout: Readout | None = None

    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Choose structure, latency and readout on a held-out split, refit on the whole window;
        return the fit record."""
        fold = train.time_split(self.settings.heldout_fraction)
        candidates, chosen, failed = search(fold, self.settings, self.budget, self.seed)
        structure, latency_s = chosen.extra["structure"], chosen.extra["latency_s"]
        membrane, threshold, v_rmse, _ = fit_parameters(train, latency_s, structure, self.settings)
        self.gif, self.readout = FittedGIF(membrane, threshold.threshold, latency_s), chosen.extra["readout"]
        stochastic = next(c for c in candidates if c.extra["structure"] == structure
                          and c.extra["latency_s"] == latency_s and c.extra["readout"].kind == "stochastic")
        fitted = {"membrane": membrane.to_record(), "threshold": threshold.to_record(), "voltage_rmse_mV": v_rmse,
                  "latency_ms": 1e3 * latency_s, **structure.to_choice(),
                  "model_step_ms": 1e3 * train.dt_s * samples_per_step(train.dt_s, self.settings.model_step_s),
                  "readout": str(self.readout), "prediction_mode": self.readout.kind,
                  "deterministic_level_hz": self.readout.value if self.readout.kind == "level" else None,
                  "count_scale": self.readout.value if self.readout.kind == "count-matched" else None}
        why = (f"highest held-out merit on {fold.label} among the stochastic readout, the hazard levels (each "
               f"averaged with its grid neighbours) and the count-matched ones: {chosen.objective:.3f} vs "
               f"{stochastic.objective:.3f} stochastic")
        return fit_record(settings=settings_record(self.settings), fitted=fitted,
                          held_out=held_out_record(chosen.score, fold.label),
                          candidates=candidates_record([Candidate(c.choice, c.score, c.objective) for c in candidates]),
                          details={"prediction_mode_why": why, "failed_candidates": failed})

    def predict(self, stimulus: Stimulus) -> np.ndarray | list[np.ndarray]:
        """Spike times (s) inside ``stimulus.window_s``: one train (deterministic) or one per repetition."""
        s = self.settings
        return readout_trains(self.gif, stimulus, (self.readout,), levels_hz=s.levels_hz, count_samples=s.count_samples,
                              model_step_s=s.model_step_s, seed=self.seed)[self.readout]
