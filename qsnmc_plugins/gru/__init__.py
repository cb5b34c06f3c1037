"""gru: a gated recurrent network trained on the spike likelihood over 1 ms bins.

A GRU (or, as a setting, an LSTM) driven by the injected current and three causal
low-pass filtrates of it outputs a spike hazard per bin, trained by binary cross-entropy
against the fraction of recorded repetitions that spike in each bin. One network by default
(several seeds as an option, their hazards averaged) whose weights are averaged over training
steps; a peak-picking readout turns the hazard into spike times; checkpoints of the weight
average and the readout are chosen on the held-out end of the training window.

Heavy imports (torch) happen inside the model's methods so that ``qsnmc list`` stays fast.
"""
from qsnmc import hookimpl

from qsnmc_plugins.gru.model import GRUModel


@hookimpl
def qsnmc_register_models() -> list:
    return [GRUModel]
