"""The model interface every plugin implements.

A model is constructed as ``ModelClass(seed=..., budget=...)``, then the harness
calls, in a fresh isolated process:

1. ``fit(train)`` with a :class:`qsnmc.data.TrainingData` (training window only).
   It may return a JSON-serialisable dict, the *fit record* (fitted parameters with
   their units, validation figures, loss curves), saved in the run record.
2. ``predict(stimulus)`` for every :class:`qsnmc.data.Stimulus` of the test. It
   returns spike times in seconds (absolute protocol time, inside
   ``stimulus.window_s``, sorted): one array for a deterministic model (used for
   every repetition) or a list of ``stimulus.n_repetitions`` arrays for a stochastic one.

``budget`` scales the fit's compute (1.0 = the model's documented default; tests
use small values such as 0.05 for a quick fit). ``seed`` makes the fit and the
prediction reproducible.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from qsnmc.data import Stimulus, TrainingData

SpikeTrains = np.ndarray | Sequence[np.ndarray]


class Model:
    """Convenience base class; any object with the same attributes works too."""

    #: unique model name shown in the ranking table (letters, digits, ``-``, ``_``)
    name: ClassVar[str] = ""
    #: one line describing the model, shown by ``qsnmc list``
    description: ClassVar[str] = ""

    def __init__(self, seed: int = 0, budget: float = 1.0) -> None:
        self.seed = int(seed)
        self.budget = float(budget)

    def fit(self, train: TrainingData) -> dict[str, Any] | None:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, stimulus: Stimulus) -> SpikeTrains:  # pragma: no cover - interface
        raise NotImplementedError
