"""Conformance checks a plugin author runs on their own model, in their own package.

    from qsnmc.testing import check_model, parametrize_models

    def test_my_model_conforms():
        check_model(MyModel)

    @parametrize_models()              # every discovered model: built-ins, entry points, submissions
    def test_every_model(model_class):
        check_model(model_class)

:func:`check_model` fits the model on a tiny synthetic challenge made in-process (a noisy LIF,
:func:`synthetic_challenge`) at a small budget and raises :class:`ConformanceError` naming the model
and the check it breaks: Settings documented and bounded; ``predict`` before ``fit`` raises
:class:`qsnmc.NotFittedError`; the fit record in the one schema, its settings rebuilding the model's,
its held-out P the one its per-stimulus figures give and its best candidate scored; predictions
finite, strictly increasing and inside the window; two fits with one seed predicting the same trains.
It runs in this process, unsandboxed, like :func:`qsnmc.evaluate_in_process`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from qsnmc.challenges.store import Challenge
from qsnmc.harness.plugins import find_sources, instantiate, load_models
from qsnmc.testing.checks import (ConformanceError, check_not_fitted, check_predictions, check_record,
                                  check_same_seed, check_settings)
from qsnmc.testing.synthetic import synthetic_challenge

#: the budget check_model fits with: small, as in a quick run (``qsnmc run --budget 0.02``)
QUICK_BUDGET = 0.02


@dataclass
class ConformanceReport:
    """What :func:`check_model` found: the model's name, its fit record and its first fit's time (s)."""

    model: str
    record: Any
    fit_s: float


def check_model(model_class: Any, *, budget: float = QUICK_BUDGET, seed: int = 0,
                challenge: Challenge | None = None) -> ConformanceReport:
    """Run every conformance check on ``model_class`` (fits it twice on ``challenge``, by default
    :func:`synthetic_challenge`, at ``budget``).

    Raises:
        ConformanceError: naming the model and the check it breaks.
    """
    import time

    name = getattr(model_class, "name", "") or getattr(model_class, "__name__", repr(model_class))
    challenge = challenge or synthetic_challenge()
    check_settings(model_class, name)
    train, first_stimulus = challenge.training_data(), challenge.test_stimuli()[0]
    model = instantiate(model_class, seed, budget)
    check_not_fitted(model, first_stimulus, name)
    t0 = time.perf_counter()
    record = model.fit(train)
    fit_s = time.perf_counter() - t0
    check_record(model_class, model, record, name)
    predictions = check_predictions(model, challenge, name)
    again = instantiate(model_class, seed, budget)
    again.fit(train)
    check_same_seed(predictions, check_predictions(again, challenge, name), name)
    return ConformanceReport(name, record, fit_s)


def discovered_models(submissions_dir: str | Path | None = None) -> list[Any]:
    """Every model class qsnmc finds (built-ins, installed entry points, ``submissions_dir``'s files),
    imported in this process; a source that fails to load raises its error."""
    return [factory for source in find_sources(submissions_dir) for factory in load_models(source).values()]


def parametrize_models(submissions_dir: str | Path | None = None, argname: str = "model_class") -> Callable:
    """A ``pytest.mark.parametrize`` over :func:`discovered_models`, one case per model named by it."""
    import pytest

    models = discovered_models(submissions_dir)
    return pytest.mark.parametrize(argname, models, ids=[m.name for m in models])


__all__ = ["check_model", "parametrize_models", "discovered_models", "synthetic_challenge", "ConformanceError",
           "ConformanceReport", "QUICK_BUDGET"]
