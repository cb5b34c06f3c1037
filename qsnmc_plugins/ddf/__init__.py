"""DDF: data-driven forecasting of the membrane voltage with radial basis functions.

After Clark, Fuller, Platt & Abarbanel (2022), "Reduced-dimension, biophysical neuron
models constructed from observed data", Neural Computation 34(7). A delay embedding of
the recorded voltage feeds a Gaussian RBF network whose output, plus a term linear in
the injected current, forecasts the next voltage sample; the map free-runs on the
current alone over the test window and spikes are read with the harness's detector.
The map's weights come from ridge regression on one-step errors.

Heavy modules are imported lazily so that ``qsnmc list`` stays fast.
"""
from __future__ import annotations

import qsnmc


@qsnmc.hookimpl
def qsnmc_register_models() -> list:
    from qsnmc_plugins.ddf.model import DDFModel

    return [DDFModel]
