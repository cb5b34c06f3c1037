"""dendPLRNN: a dendritic piecewise-linear RNN trained with sparse teacher forcing.

Brenner, Hess, Mikhaeil, Bereska, Monfared, Kuo & Durstewitz (2022), "Tractable
dendritic RNNs for reconstructing nonlinear dynamical systems", ICML; trained as in
Mikhaeil, Monfared & Durstewitz (2022), "On the difficulty of learning chaotic
dynamics with RNNs", NeurIPS. The injected current enters the latent state through
a learned input matrix; the voltage is read from the first latent unit.

Heavy imports (torch) happen inside the model's methods so that ``qsnmc list`` stays fast.
"""
from qsnmc import hookimpl

from qsnmc_plugins.dendplrnn.model import DendPLRNNModel


@hookimpl
def qsnmc_register_models() -> list:
    return [DendPLRNNModel]
