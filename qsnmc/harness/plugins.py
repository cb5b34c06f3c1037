"""Finding and loading model plugins.

Three places, one mechanism (pluggy, hooks from :mod:`qsnmc.hookspecs`):
1. built-in plugins under ``plugins/``, registered in the ``qsnmc`` entry-point group
   of qsnmc's own ``pyproject.toml``;
2. any installed distribution's entry points in the ``qsnmc`` group;
3. every ``*.py`` file (not starting with ``_``) in the submissions folder.

The scoring process only *finds* sources here (:func:`find_sources`, from metadata and
file names, executing no plugin code). Plugin code is imported only inside isolated
worker processes (:func:`load_models`), one source at a time, so one broken plugin
becomes one failed row.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import importlib.machinery
import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from qsnmc import hookspecs

ENTRY_POINT_GROUP = "qsnmc"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin comes from.

    Attributes:
        kind: ``"builtin"`` (an entry point of qsnmc itself), ``"entrypoint"`` (another
            installed distribution) or ``"submission"`` (a file in the submissions folder).
        target: the module's dotted name (entry points) or the file's path (submissions).
        dist: ``"name version"`` of the distribution providing an entry point.
        paths: files and folders the plugin's code lives in (what the sandbox exposes and
            what the cache hashes); parent packages' ``__init__.py`` included.
    """

    kind: str
    target: str
    dist: str = ""
    paths: tuple[str, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        if self.kind == "submission":
            return f"submission {self.target}"
        what = "built-in" if self.kind == "builtin" else "entry point"
        return f"{what} {self.target}" + (f" ({self.dist})" if self.dist and self.kind != "builtin" else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PluginSource":
        return cls(d["kind"], d["target"], d.get("dist", ""), tuple(d.get("paths", ())))


def _find_spec_without_import(dotted: str) -> importlib.machinery.ModuleSpec | None:
    """Locate a module without executing it or its parent packages."""
    parts = dotted.split(".")
    spec = None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(parts[0], None)
        except Exception:  # noqa: BLE001 - a broken finder must not stop discovery
            spec = None
        if spec is not None:
            break
    for depth in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        try:
            spec = importlib.machinery.PathFinder.find_spec(
                ".".join(parts[: depth + 1]), list(spec.submodule_search_locations)
            )
        except (ImportError, KeyError, ValueError):  # e.g. a missing submodule taken for a namespace
            return None
    return spec


def module_paths(dotted: str) -> tuple[str, ...]:
    """The files a module's code lives in: its whole top-level package (or its file, for a
    top-level module), so that a plugin may import the modules beside it (the built-ins share
    ``qsnmc_plugins.hazard``)."""
    spec = _find_spec_without_import(dotted.split(".")[0])
    if spec is None or spec.origin in ("built-in", "frozen"):
        return ()
    if spec.origin is None:  # a namespace package: every folder it spans
        return tuple(str(Path(p).resolve()) for p in spec.submodule_search_locations or ())
    origin = Path(spec.origin).resolve()
    return (str(origin.parent if spec.submodule_search_locations else origin),)


def find_sources(submissions_dir: str | Path | None) -> list[PluginSource]:
    """Every plugin source, without importing any plugin code."""
    sources: list[PluginSource] = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.value, e.name)):
        dist = ep.dist
        dist_name = dist.metadata["Name"] if dist is not None else ""
        kind = "builtin" if dist_name == "qsnmc" else "entrypoint"
        module = ep.value.split(":")[0].strip()
        label = f"{dist_name} {dist.version}" if dist is not None else ""
        sources.append(PluginSource(kind, module, label, module_paths(module)))
    if submissions_dir is not None and Path(submissions_dir).is_dir():
        for f in sorted(Path(submissions_dir).glob("*.py")):
            if not f.name.startswith("_"):
                path = str(f.resolve())
                sources.append(PluginSource("submission", path, "", (path,)))
    return sources


#: the qsnmc package folder (this file is qsnmc/harness/plugins.py)
CORE_PACKAGE = Path(__file__).resolve().parents[1]


def _code_files(folder: Path) -> list[Path]:
    """Every file under ``folder``, recursively, in a fixed order (no byte-code caches)."""
    return sorted(f for f in folder.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def source_hash(source: PluginSource) -> str:
    """sha256 over the plugin's code (every file under its paths) and all of qsnmc's own code.

    Each file enters with its path relative to its root, so a moved file changes the hash.
    """
    h = hashlib.sha256()
    files: list[tuple[str, Path]] = []
    for p in source.paths:
        path = Path(p)
        if path.is_dir():
            files += [(str(f.relative_to(path)), f) for f in _code_files(path)]
        else:
            files.append((path.name, path))
    files += [("qsnmc/" + str(f.relative_to(CORE_PACKAGE)), f) for f in _code_files(CORE_PACKAGE) if f.suffix == ".py"]
    for name, f in files:
        h.update(name.encode())
        try:
            h.update(f.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
    return h.hexdigest()


# --- inside worker processes only ---------------------------------------------------------
def import_source(source: PluginSource) -> ModuleType:
    """Import a plugin's module (worker process only: this runs plugin code)."""
    if source.kind == "submission":
        path = Path(source.target)
        mod_name = "qsnmc_submission_" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(source.target)


def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("qsnmc")
    pm.add_hookspecs(hookspecs)
    return pm


def load_models(source: PluginSource) -> dict[str, Any]:
    """Import one source and return ``{model name: factory}`` (worker process only).

    Raises:
        pluggy.PluginValidationError: a hook implementation with no matching hookspec
            (e.g. a misspelt hook name), found by ``check_pending()``.
        ValueError: a model without a valid ``name``, or one name twice in this source.
    """
    module = import_source(source)
    pm = plugin_manager()
    pm.register(module, name=source.label)
    pm.check_pending()
    models: dict[str, Any] = {}
    for batch in pm.hook.qsnmc_register_models():
        for factory in batch or ():
            name = getattr(factory, "name", None)
            if not isinstance(name, str) or not MODEL_NAME.match(name):
                raise ValueError(f"{source.label}: model {factory!r} has no valid name (got {name!r})")
            if name in models:
                raise ValueError(f"{source.label}: model name {name!r} registered twice")
            models[name] = factory
    if not models:
        raise ValueError(f"{source.label}: registers no model (is qsnmc_register_models implemented and marked with @qsnmc.hookimpl?)")
    return models


_CONSTRUCTION = ("qsnmc constructs a model as {name}(seed=int, budget=float, **settings), or as {name}() "
                 "when __init__ takes neither (or derive from qsnmc.Model and call super().__init__(seed, budget))")


def instantiate(factory: Any, seed: int, budget: float, settings: dict[str, Any] | None = None) -> Any:
    """Construct a model as ``factory(seed=..., budget=..., **settings)`` (worker process only).

    A factory whose signature takes neither ``seed`` nor ``budget`` (a plain class with no
    ``__init__`` arguments) is constructed without them, and the two are set as attributes.

    Raises:
        TypeError: the factory cannot be constructed that way; the message says what to change.
    """
    settings = dict(settings or {})
    name = getattr(factory, "__name__", repr(factory))
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read (e.g. some builtins): try the documented call
        params = None
    takes_any = params is not None and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if params is not None and not takes_any and "seed" not in params and "budget" not in params:
        unknown = sorted(k for k in settings if k not in params)
        if unknown:
            raise TypeError(f"{name} takes no settings {unknown}: declare them as keyword arguments of __init__")
        try:
            model = factory(**settings)
        except TypeError as exc:
            raise TypeError(f"{name}() failed: {exc}. {_CONSTRUCTION.format(name=name)}: add seed and budget "
                            "to its __init__, and give every other argument a default") from exc
        for attr, value in (("seed", int(seed)), ("budget", float(budget))):
            try:
                setattr(model, attr, value)
            except AttributeError as exc:
                raise TypeError(f"{name}: cannot set .{attr} on the model ({exc}); accept {attr} in __init__") from exc
        return model
    try:
        return factory(seed=seed, budget=budget, **settings)
    except TypeError as exc:
        if params is None or takes_any or ("seed" in params and "budget" in params):
            raise
        missing = [k for k in ("seed", "budget") if k not in params]
        raise TypeError(
            f"{name}(seed=..., budget=...) failed: {exc}. {_CONSTRUCTION.format(name=name)}: add "
            f"{' and '.join(missing)} to its __init__"
        ) from exc
