"""The one fit-record schema: what every built-in's ``fit`` returns.

Keys (all present; empty where a model has nothing to say):

- ``settings``: the settings dataclass used (:func:`qsnmc.settings_record`);
- ``fitted``: fitted parameters, units in their names (``tau_m_ms``, ``threshold_mV``);
- ``held_out``: the score on held-out training data that the choices were made on:
  ``split`` (which fold), ``performance`` (P), ``count_error`` and ``per_stimulus``
  (:meth:`qsnmc.ValidationScore.per_stimulus`), or None where there was none;
- ``candidates``: the search's candidates with their held-out scores (:func:`qsnmc.candidates_record`);
- ``curves``: training curves only, ``{name: {"x": [...], "y": [...], "x_label": ..., "y_label": ...}}``;
- ``variant``: which model predicts after the search (:attr:`qsnmc.Model.variant`): ``"refit"`` (the
  chosen candidate refit on the whole training window) or ``"no refit: the searched model predicts"``;
  None for a model without a search. :class:`qsnmc.Model` fills it from the class attribute when ``fit``
  returns a record whose ``variant`` is None;
- ``details``: anything model-specific.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from qsnmc.model import VARIANTS
from qsnmc.scoring.validation import ValidationScore

KEYS = ("settings", "fitted", "held_out", "candidates", "curves", "variant", "details")


def curve(x: Sequence[float], y: Sequence[float], x_label: str, y_label: str) -> dict[str, Any]:
    """One training curve (e.g. held-out P against the training step)."""
    if len(x) != len(y):
        raise ValueError(f"a curve needs as many x as y values, got {len(x)} and {len(y)}")
    return {"x": [float(v) for v in x], "y": [float(v) for v in y], "x_label": x_label, "y_label": y_label}


def held_out_record(score: ValidationScore, split: str) -> dict[str, Any]:
    """The ``held_out`` entry: P, count error and per-stimulus figures of the held-out ``split``."""
    return {"split": split, "performance": score.performance, "count_error": score.count_error(),
            "per_stimulus": score.per_stimulus()}


def fit_record(*, settings: Mapping[str, Any], fitted: Mapping[str, Any] | None = None,
               held_out: Mapping[str, Any] | None = None, candidates: Sequence[Mapping[str, Any]] = (),
               curves: Mapping[str, Mapping[str, Any]] | None = None,
               details: Mapping[str, Any] | None = None, variant: str | None = None) -> dict[str, Any]:
    """A fit record in the one schema (see the module docstring); checked by :func:`check_fit_record`."""
    record = {"settings": dict(settings), "fitted": dict(fitted or {}), "held_out": None if held_out is None
              else dict(held_out), "candidates": list(candidates), "curves": dict(curves or {}),
              "variant": variant, "details": dict(details or {})}
    check_fit_record(record)
    return record


def check_fit_record(record: Any) -> None:
    """Raise ValueError naming what breaks the schema: keys, types, curves' shape, JSON-ability."""
    if not isinstance(record, dict):
        raise ValueError(f"a fit record is a dict, got {type(record).__name__}")
    if set(record) != set(KEYS):
        raise ValueError(f"fit record keys must be {list(KEYS)}; missing {sorted(set(KEYS) - set(record))}, "
                         f"extra {sorted(set(record) - set(KEYS))}")
    for key in ("settings", "fitted", "curves", "details"):
        if not isinstance(record[key], dict):
            raise ValueError(f"fit record {key!r} must be a dict")
    if not isinstance(record["candidates"], list):
        raise ValueError("fit record 'candidates' must be a list")
    if record["variant"] is not None and record["variant"] not in VARIANTS:
        raise ValueError(f"fit record 'variant' must be one of {list(VARIANTS)} or None, got {record['variant']!r}")
    held = record["held_out"]
    if held is not None and not {"split", "performance", "count_error", "per_stimulus"} <= set(held):
        raise ValueError("fit record 'held_out' needs split, performance, count_error and per_stimulus")
    for name, c in record["curves"].items():
        if not isinstance(c, dict) or set(c) != {"x", "y", "x_label", "y_label"} or len(c["x"]) != len(c["y"]):
            raise ValueError(f"curve {name!r} must be {{x, y, x_label, y_label}} with len(x) == len(y)")
    try:
        json.dumps(record, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fit record is not JSON-serialisable: {exc}") from None
