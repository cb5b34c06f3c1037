"""gru: a gated recurrent network's spike hazard over 1 ms bins (see :mod:`qsnmc_plugins.gru.model`).

Heavy imports (torch) happen inside the model's methods so that ``qsnmc list`` stays fast.
"""
from qsnmc import hookimpl

from qsnmc_plugins.gru.model import GRUModel


@hookimpl
def qsnmc_register_models() -> list:
    return [GRUModel]
