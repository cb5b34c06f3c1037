"""The conformance checks of one model class, each raising :class:`ConformanceError` naming what breaks."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

from qsnmc.challenges.store import Challenge
from qsnmc.fitting.record import check_fit_record
from qsnmc.model import Model, NotFittedError
from qsnmc.scoring.evaluation import validate_prediction
from qsnmc.scoring.metrics import InvalidPrediction
from qsnmc.settings import SettingsError, settings_record, settings_schema

#: how far a recorded held-out P may be from the one its candidates and per-stimulus figures give
TOLERANCE = 1e-9


class ConformanceError(AssertionError):
    """A model breaks one of :func:`qsnmc.testing.check_model`'s checks; the message names it and the check."""


def _fail(model: str, check: str, why: str) -> ConformanceError:
    return ConformanceError(f"{model}: {check}: {why}")


def check_settings(cls: type, model: str) -> None:
    """``Settings`` is a frozen dataclass whose every field has a reason, and every number a bound."""
    settings_cls = getattr(cls, "Settings", None)
    if settings_cls is None:
        return
    if not dataclasses.is_dataclass(settings_cls) or not settings_cls.__dataclass_params__.frozen:
        raise _fail(model, "settings", f"Settings {settings_cls!r} is not a frozen dataclass")
    for name, spec in settings_schema(settings_cls).items():
        if not spec["doc"]:
            raise _fail(model, "settings", f"setting {name!r} has no reason (make it with qsnmc.setting)")
        if spec["type"] in ("int", "float") and spec["min"] is None and spec["max"] is None and not spec["choices"]:
            raise _fail(model, "settings", f"setting {name!r} ({spec['type']}) has no bound (qsnmc.setting's min/max)")
    grid = getattr(cls, "param_grid", None) or {}
    unknown = sorted(set(grid) - set(settings_schema(settings_cls)))
    if unknown:
        raise _fail(model, "settings", f"param_grid names {unknown}, which are not settings")


def check_not_fitted(model_obj: Any, stimulus: Any, model: str) -> None:
    """``predict`` before ``fit`` raises :class:`qsnmc.NotFittedError` (for a :class:`qsnmc.Model`)."""
    if not isinstance(model_obj, Model):
        return
    try:
        model_obj.predict(stimulus)
    except NotFittedError:
        return
    except Exception as exc:  # noqa: BLE001 - the wrong error is the failure reported
        raise _fail(model, "predict before fit", f"raised {type(exc).__name__}: {exc}, not qsnmc.NotFittedError")
    raise _fail(model, "predict before fit", "returned a prediction instead of raising qsnmc.NotFittedError")


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE


def _performance_of(per_stimulus: Mapping[str, Mapping[str, Any]]) -> float:
    """P of the per-stimulus figures: mean Gamma/R over the included stimuli, else mean raw Gamma."""
    used = [row["gamma_over_r"] for row in per_stimulus.values() if row.get("included")]
    if used:
        return float(np.mean(used))
    return float(np.mean([row["gamma"] for row in per_stimulus.values()])) if per_stimulus else 0.0


def check_record(cls: type, model_obj: Any, record: Any, model: str) -> None:
    """The fit record follows the one schema, its settings rebuild the model's, and its held-out P
    is the one its per-stimulus figures give and the best of its candidates scored."""
    if record is None:
        return
    try:
        check_fit_record(record)
    except ValueError as exc:
        raise _fail(model, "fit record", str(exc)) from None
    settings = getattr(model_obj, "settings", None)
    if getattr(cls, "Settings", None) is not None and settings is not None:
        if record["settings"] != settings_record(settings):
            raise _fail(model, "fit record", "its 'settings' are not the settings used (qsnmc.settings_record)")
        try:
            rebuilt = cls(seed=0, budget=1.0, **record["settings"]).settings
        except (SettingsError, TypeError) as exc:
            raise _fail(model, "fit record", f"its 'settings' do not rebuild the model: {exc}") from None
        if rebuilt != settings:
            raise _fail(model, "fit record", "its 'settings' rebuild other settings than the ones used")
    held = record["held_out"]
    if held is None:
        return
    if record["variant"] is None:
        raise _fail(model, "fit record", "a held-out score but no 'variant' (set the class's Model.variant: "
                    "'refit' or 'no refit: the searched model predicts')")
    if not _close(_performance_of(held["per_stimulus"]), held["performance"]):
        raise _fail(model, "held-out figure", f"P {held['performance']!r} is not the one its per-stimulus figures "
                    f"give ({_performance_of(held['per_stimulus'])!r})")
    scored = [c for c in record["candidates"] if c.get("performance") is not None]
    if not scored:
        return
    best = max(scored, key=lambda c: -math.inf if c.get("objective") is None else c["objective"])
    if not _close(best["performance"], held["performance"]):
        raise _fail(model, "held-out figure", f"P {held['performance']!r} is not the best candidate's "
                    f"({best['performance']!r}, objective {best['objective']!r})")


def check_predictions(model_obj: Any, challenge: Challenge, model: str) -> dict[str, list[np.ndarray]]:
    """Every test stimulus' prediction: finite, strictly increasing, inside the window, at most 500 Hz."""
    out = {}
    for stim in challenge.test_stimuli():
        try:
            out[stim.name] = validate_prediction(model_obj.predict(stim), stim.window_s, stim.n_repetitions)
        except InvalidPrediction as exc:
            raise _fail(model, "predictions", f"stimulus {stim.name!r}: {exc}") from None
    return out


def check_same_seed(first: Mapping[str, list[np.ndarray]], second: Mapping[str, list[np.ndarray]],
                    model: str) -> None:
    """Two fits with one seed predict the same trains, bit for bit."""
    for name, trains in first.items():
        again = second[name]
        if len(trains) != len(again) or not all(np.array_equal(a, b) for a, b in zip(trains, again)):
            raise _fail(model, "same seed, same prediction", f"stimulus {name!r}: two fits with one seed predicted "
                        "different trains (draw every random number from a generator seeded with `seed`)")


__all__ = ["ConformanceError", "check_settings", "check_not_fitted", "check_record", "check_predictions",
           "check_same_seed"]
