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

import functools
from typing import Any, Callable, ClassVar, Literal, Sequence

import numpy as np

from qsnmc.data import Stimulus, TrainingData
from qsnmc.settings import make_settings

SpikeTrains = np.ndarray | Sequence[np.ndarray]
#: what the fit record's ``details["variant"]`` says of the model that predicts: the searched candidate
#: refit on the whole training window, or the searched model itself (fitted on part of it)
Variant = Literal["refit", "no refit: the searched model predicts"]
VARIANTS: tuple[str, ...] = ("refit", "no refit: the searched model predicts")

#: the instance attribute the base class sets once ``fit`` has returned
_FITTED = "_qsnmc_fitted"


class NotFittedError(RuntimeError):
    """``predict`` was called on a :class:`Model` whose ``fit`` has not returned."""


def _marks_fitted(fit: Callable) -> Callable:
    """``fit``, setting the fitted flag when it returns (not when it raises) and filling an empty
    ``variant`` of its fit record from the class's :attr:`Model.variant`."""
    @functools.wraps(fit)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        record = fit(self, *args, **kwargs)
        setattr(self, _FITTED, True)
        if isinstance(record, dict) and "variant" in record and record["variant"] is None:
            record["variant"] = type(self).variant
        return record
    return wrapper


def _needs_fit(predict: Callable) -> Callable:
    """``predict``, raising :class:`NotFittedError` naming the model before ``fit`` has returned."""
    @functools.wraps(predict)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        if not getattr(self, _FITTED, False):
            raise NotFittedError(f"model {self.name or type(self).__name__!r}: predict was called before fit")
        return predict(self, *args, **kwargs)
    return wrapper


class Model:
    """Convenience base class.

    A class that does not derive from it works too if it has the same members and its
    ``__init__`` takes ``seed`` and ``budget`` (plus its settings), or takes no arguments
    at all: the harness then constructs it without them and sets ``seed`` and ``budget``
    as attributes.

    Every subclass's ``fit`` and ``predict`` are wrapped when the class is defined
    (``__init_subclass__``): ``predict`` before ``fit`` has returned raises :class:`NotFittedError`
    naming the model, with no code in the subclass.
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
    #: which model predicts after the search: its best candidate refit on the whole training window
    #: ("refit"), or the searched model itself, fitted on the search's part of the window ("no refit:
    #: the searched model predicts"); None for a model without a search. The fit record's
    #: ``details["variant"]`` carries it (:func:`qsnmc.fit_record`'s ``variant``)
    variant: ClassVar[Variant | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "fit" in cls.__dict__:
            cls.fit = _marks_fitted(cls.__dict__["fit"])
        if "predict" in cls.__dict__:
            cls.predict = _needs_fit(cls.__dict__["predict"])

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
