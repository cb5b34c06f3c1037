"""The fitting toolkit: the small pieces every model plugin shares.

- :mod:`~qsnmc.fitting.signals`: resampling (step sizes, block mean / max) and causal
  exponential low-pass filters, with one start convention.
- :mod:`~qsnmc.fitting.objective`: the competition objective with a named spike-count penalty.
- :mod:`~qsnmc.fitting.search`: held-out candidates of a search, kept apart from the model.
- :mod:`~qsnmc.fitting.record`: the one fit-record schema every built-in returns.

A model's settings (one frozen dataclass, checked overrides, their schema for the CLI) are
in :mod:`qsnmc.settings`; spike-train helpers (window clipping, R of a stretch) live with the
metrics in :mod:`qsnmc.scoring.trains`. Plugins import all of these from :mod:`qsnmc` itself.
"""
