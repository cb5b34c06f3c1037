"""The MAT model: a multi-timescale adaptive threshold neuron (Kobayashi, Tsubo & Shinomoto 2009).

The fit: :mod:`qsnmc_plugins.mat.model`.
"""
from qsnmc import hookimpl


@hookimpl
def qsnmc_register_models() -> list:
    from qsnmc_plugins.mat.model import MATModel

    return [MATModel]
