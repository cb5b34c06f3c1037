"""Reference baselines that make the ranking meaningful: chance level and the simplest neuron.

- ``poisson``: a rate-matched Poisson train (Gamma about 0: the chance level).
- ``lif``: a leaky integrate-and-fire neuron, membrane fitted by least squares on the
  subthreshold voltage; threshold, reset and spike latency chosen on a grid by Gamma/R on the
  held-out part of the training window minus a spike-count penalty, the membrane then refit.
"""
from qsnmc import hookimpl

from qsnmc_plugins.baselines.lif import LeakyIntegrateAndFire
from qsnmc_plugins.baselines.poisson import RateMatchedPoisson


@hookimpl
def qsnmc_register_models() -> list:
    return [RateMatchedPoisson, LeakyIntegrateAndFire]
