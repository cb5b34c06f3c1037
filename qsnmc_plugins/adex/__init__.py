"""Built-in plugin ``adex``: the adaptive exponential integrate-and-fire neuron in Brian2.

Brian2 is imported only when a model fits or predicts, so listing models stays fast.
"""
from __future__ import annotations

import qsnmc
from qsnmc_plugins.adex.model import AdExModel

__all__ = ["AdExModel"]


@qsnmc.hookimpl
def qsnmc_register_models() -> list:
    return [AdExModel]
