"""The MAT model: a multi-timescale adaptive threshold neuron (Kobayashi, Tsubo & Shinomoto 2009).

A linear, non-resetting membrane filter of the injected current, fitted by least
squares on the subthreshold voltage, against a threshold that jumps at each spike and
decays with 10 ms and 200 ms time constants, fitted by maximising the coincidence
factor on the training window.
"""
from qsnmc import hookimpl


@hookimpl
def qsnmc_register_models() -> list:
    from qsnmc_plugins.mat.model import MATModel

    return [MATModel]
