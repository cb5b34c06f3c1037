"""A model's settings: one frozen dataclass, overridden only through its constructor.

A plugin declares its settings as fields of a frozen dataclass, each with a default, a
one-line reason (units in the name or the text) and optional bounds::

    @dataclass(frozen=True)
    class LIFSettings:
        count_penalty: float = setting(0.1, "weight of the spike-count error", min=0.0)

and sets ``Settings = LIFSettings`` on its :class:`qsnmc.Model` subclass; the model is then
built as ``Model(seed=..., budget=..., **overrides)`` and reads ``self.settings``. ``--param``,
``qsnmc sweep``, tests and benchmarks all go through that constructor, so an override either
takes effect or is refused: never silently ignored as a module constant's ``setattr`` can be.

:func:`settings_schema` describes the fields as JSON (type, default, reason, bounds), which the
command line reads to check ``--param`` before any work starts (:func:`check_overrides`).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from typing import Any, Literal, Mapping

_SKIP = {"self", "seed", "budget"}


class SettingsError(ValueError):
    """A setting that does not exist, or a value of the wrong type or out of range."""


def setting(default: Any, doc: str, *, min: float | None = None, max: float | None = None) -> Any:  # noqa: A002
    """A settings-dataclass field: its default, a one-line reason, and optional bounds (inclusive)."""
    return dataclasses.field(default=default, metadata={"doc": doc, "min": min, "max": max})


def _type_name(hint: Any) -> tuple[str, list | None, bool]:
    """(JSON type name, allowed choices or None, whether None is allowed) of a type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        rest = [a for a in args if a is not type(None)]
        name, choices, _ = _type_name(rest[0]) if len(rest) == 1 else ("any", None, False)
        return name, choices, type(None) in args
    if origin is Literal:
        kinds = {type(a).__name__ for a in args}
        return (kinds.pop() if len(kinds) == 1 else "any"), list(args), False
    if origin in (tuple, list) and args:
        inner, _, _ = _type_name(args[0])
        return f"{inner} list", None, False
    if hint in (float, int, bool, str):
        return hint.__name__, None, False
    return "any", None, False


def _tuples(value: Any) -> Any:
    """Lists (JSON's arrays) as tuples, at any depth: a frozen dataclass's field value is hashable."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _json(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    return value


def settings_schema(settings_cls: type) -> dict[str, dict[str, Any]]:
    """Per setting: ``type`` ("float", "int", "bool", "str", "float list", ..., "any"),
    ``default``, ``doc``, ``min``, ``max``, ``choices`` and ``optional`` (None allowed), as JSON."""
    if not dataclasses.is_dataclass(settings_cls):
        raise TypeError(f"{settings_cls!r} is not a settings dataclass")
    hints = typing.get_type_hints(settings_cls)
    schema = {}
    for f in dataclasses.fields(settings_cls):
        name, choices, optional = _type_name(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        schema[f.name] = {"type": name, "default": _json(default), "doc": f.metadata.get("doc", ""),
                          "min": f.metadata.get("min"), "max": f.metadata.get("max"), "choices": choices,
                          "optional": optional}
    return schema


def schema_of_factory(factory: Any) -> dict[str, dict[str, Any]] | None:
    """The settings schema of a model factory: its ``Settings`` dataclass, else the keyword
    arguments of its constructor (beyond seed and budget) with their defaults; None when the
    constructor takes arbitrary ``**kwargs`` (nothing can be checked before it runs)."""
    cls = getattr(factory, "Settings", None)
    if cls is not None and dataclasses.is_dataclass(cls):
        return settings_schema(cls)
    init = getattr(factory, "__init__", None)
    if hasattr(factory, "Settings") and getattr(init, "__qualname__", "") == "Model.__init__":
        return {}  # a qsnmc.Model without Settings takes none
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    schema = {}
    for p in params.values():
        if p.name in _SKIP or p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        kind = type(default).__name__ if isinstance(default, (bool, int, float, str)) else "any"
        schema[p.name] = {"type": kind, "default": _json(default), "doc": "", "min": None, "max": None,
                          "choices": None, "optional": default is None}
    return schema


def describe(schema: Mapping[str, Mapping[str, Any]]) -> str:
    """``name (type, default D)`` for every setting, comma-separated ("none" when empty)."""
    if not schema:
        return "none"
    return ", ".join(f"{k} ({v['type']}, default {v['default']!r})" for k, v in schema.items())


def _a(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(kind, kind)


def _coerce(key: str, value: Any, spec: Mapping[str, Any]) -> Any:
    kind = spec["type"]
    if value is None:
        if spec.get("optional"):
            return None
        raise SettingsError(f"setting {key!r} must be {_a(kind)}, got null")
    if kind.endswith(" list"):
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"setting {key!r} must be a list of {kind[:-5]} values, got {value!r}")
        inner = dict(spec, type=kind[:-5], choices=None)
        return tuple(_coerce(key, v, inner) for v in value)
    ok = {
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool)
        or isinstance(value, float) and value.is_integer(),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "any": True,
    }[kind]
    if not ok:
        raise SettingsError(f"setting {key!r} must be {_a(kind)}, got {value!r}")
    if kind == "float":
        value = float(value)
    elif kind == "int":
        value = int(value)
    elif kind == "any":
        value = _tuples(value)
    if spec.get("choices") is not None and value not in spec["choices"]:
        raise SettingsError(f"setting {key!r} must be one of {spec['choices']}, got {value!r}")
    if spec.get("min") is not None and value < spec["min"]:
        raise SettingsError(f"setting {key!r} must be at least {spec['min']}, got {value!r}")
    if spec.get("max") is not None and value > spec["max"]:
        raise SettingsError(f"setting {key!r} must be at most {spec['max']}, got {value!r}")
    return value


def check_overrides(schema: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, Any],
                    model: str = "the model") -> dict[str, Any]:
    """Overrides checked against a schema and converted (ints to floats, lists to tuples).

    Raises:
        SettingsError: an unknown name (the message lists every setting with its type and
            default) or a value of the wrong type or out of range.
    """
    out = {}
    for key, value in overrides.items():
        if key not in schema:
            raise SettingsError(f"{model} has no setting {key!r}; its settings: {describe(schema)}")
        try:
            out[key] = _coerce(key, value, schema[key])
        except SettingsError as exc:
            raise SettingsError(f"{model}: {exc}") from None
    return out


def make_settings(settings_cls: type, overrides: Mapping[str, Any] | None = None, model: str = "the model") -> Any:
    """The settings dataclass with ``overrides`` applied, each checked (:func:`check_overrides`)."""
    return settings_cls(**check_overrides(settings_schema(settings_cls), dict(overrides or {}), model))


def settings_record(settings: Any) -> dict[str, Any]:
    """A settings dataclass as a JSON-ready dict (tuples as lists), for the fit record."""
    return {k: _json(v) for k, v in dataclasses.asdict(settings).items()}


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (``--param``) as a dict; VALUE is read as JSON (numbers, true/false,
    lists) and else kept as text.

    Raises:
        ValueError: a pair without ``=`` or without a key.
    """
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out
