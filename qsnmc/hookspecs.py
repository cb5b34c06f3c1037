"""The one module that defines qsnmc's plugin hooks.

A plugin is a Python module (a built-in under ``plugins/``, an installed
distribution exposing an entry point in the ``qsnmc`` group, or a ``*.py`` file
dropped into ``submissions/``) that implements one or more of these hooks,
marked with :data:`qsnmc.hookimpl`.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("qsnmc")
hookimpl = pluggy.HookimplMarker("qsnmc")


@hookspec
def qsnmc_register_models() -> list:
    """Return the model classes (or zero-argument-compatible factories) this plugin provides.

    Each item must be callable as ``factory(seed=int, budget=float)`` and return an
    object following :class:`qsnmc.model.Model`: a ``name`` attribute,
    ``fit(train) -> dict | None`` and ``predict(stimulus) -> spike times (s)``.
    Model names must be unique across every loaded plugin.

    A factory may also expose ``param_grid`` (a dict: setting name -> list of JSON
    values); it must then accept those settings as extra keyword arguments,
    ``factory(seed=int, budget=float, **{name: value})``, which ``qsnmc sweep`` and
    ``qsnmc run NAME --param name=value`` pass.

    A factory may expose ``typical_fit_s`` (seconds at budget 1 on one core): a run starts
    its jobs longest first; a factory without it is started first.
    """
