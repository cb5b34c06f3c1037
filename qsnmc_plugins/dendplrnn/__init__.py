"""dendPLRNN: a dendritic piecewise-linear RNN trained with sparse teacher forcing and a spike likelihood.

Brenner, Hess, Mikhaeil, Bereska, Monfared, Kuo & Durstewitz (2022), "Tractable
dendritic RNNs for reconstructing nonlinear dynamical systems", ICML; trained as in
Mikhaeil, Monfared & Durstewitz (2022), "On the difficulty of learning chaotic
dynamics with RNNs", NeurIPS. The injected current enters the latent state through
a learned input matrix; the voltage is read from the first latent unit and a Bernoulli
spike hazard from the whole latent state (multimodal PLRNN: Kramer, Bommer, Tombolini,
Koppe & Durstewitz (2022), ICML). An ensemble of such networks is chosen on held-out data.

Heavy imports (torch) happen inside the model's methods so that ``qsnmc list`` stays fast.
"""
from qsnmc import hookimpl

from qsnmc_plugins.dendplrnn.model import DendPLRNNModel


@hookimpl
def qsnmc_register_models() -> list:
    return [DendPLRNNModel]
