"""The model interface every plugin implements.

A model is constructed as ``ModelClass(seed=..., budget=..., **settings)``, then the
harness calls, in a fresh isolated process:

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

``settings`` are extra keyword arguments, empty in a plain ``qsnmc run``. A model declares
them as one frozen dataclass (``Settings``, fields made with :func:`qsnmc.setting`); the base
class then checks every override and keeps the result as ``self.settings``. A class may
expose ``param_grid = {"setting": [value, ...]}`` (JSON numbers, strings, booleans):
``qsnmc sweep NAME`` then constructs it with every combination, fits each on held-out
folds of the training data (the first part of each training window, or every stimulus but
one) and scores it on the rest (never on the test window), and
``qsnmc run NAME --param setting=value`` runs one chosen setting.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from qsnmc.data import Stimulus, TrainingData
from qsnmc.settings import make_settings

SpikeTrains = np.ndarray | Sequence[np.ndarray]


class Model:
    """Convenience base class.

    A class that does not derive from it works too if it has the same members and its
    ``__init__`` takes ``seed`` and ``budget`` (plus its settings), or takes no arguments
    at all: the harness then constructs it without them and sets ``seed`` and ``budget``
    as attributes.
    """

    #: unique model name shown in the ranking table (letters, digits, ``-``, ``_``)
    name: ClassVar[str] = ""
    #: one line describing the model, shown by ``qsnmc list``
    description: ClassVar[str] = ""
    #: optional: settings ``qsnmc sweep`` tries, name -> list of values (each a keyword of ``__init__``)
    param_grid: ClassVar[dict[str, list] | None] = None
    #: optional: the frozen dataclass of the model's settings (its fields are what ``--param`` may set)
    Settings: ClassVar[type | None] = None
    #: optional: typical fit and prediction time (s) at budget 1 on one core. It only orders a run's
    #: jobs (the longest first, so that two cores do not end on one long job); None: unknown, started first
    typical_fit_s: ClassVar[float | None] = None

    def __init__(self, seed: int = 0, budget: float = 1.0, **settings: Any) -> None:
        """Args: seed (reproducibility), budget (compute scale, 1.0 = default fit), settings
        (overrides of the fields of ``Settings``, checked: an unknown name or a wrong value is a
        :class:`qsnmc.SettingsError`, i.e. a failed row; the CLI checks them before any work)."""
        if self.Settings is None and settings:
            raise TypeError(f"{type(self).__name__} takes no settings, got {sorted(settings)}")
        self.seed = int(seed)
        self.budget = float(budget)
        self.settings = make_settings(self.Settings, settings, self.name or type(self).__name__) \
            if self.Settings is not None else None

    def fit(self, train: TrainingData) -> dict[str, Any] | None:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, stimulus: Stimulus) -> SpikeTrains:  # pragma: no cover - interface
        raise NotImplementedError
