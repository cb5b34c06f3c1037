"""The MAT model: a multi-timescale adaptive threshold neuron (Kobayashi, Tsubo & Shinomoto 2009).

A linear, non-resetting membrane filter of the injected current, fitted by least
squares on the subthreshold voltage, against a threshold that jumps (up or down) at each
spike and decays with fitted time constants, fitted by maximising the competition's score
(Gamma/R per stimulus) minus a penalty on wrong spike counts on the training window.
"""
from qsnmc import hookimpl


@hookimpl
def qsnmc_register_models() -> list:
    from qsnmc_plugins.mat.model import MATModel

    return [MATModel]
