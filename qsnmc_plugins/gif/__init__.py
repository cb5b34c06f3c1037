"""The GIF model: generalized integrate-and-fire with a spike-triggered current and a moving threshold.

Mensi et al. (2012, J Neurophysiol 107:1756) and Pozzorini et al. (2015, PLoS Comput Biol
11:e1004275); the fit: :mod:`qsnmc_plugins.gif.model`.
"""
from qsnmc import hookimpl


@hookimpl
def qsnmc_register_models() -> list:
    from qsnmc_plugins.gif.model import GIFModel

    return [GIFModel]
