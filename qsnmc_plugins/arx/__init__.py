"""ARX plugin: an autoregressive-with-exogenous-input model of the membrane voltage
with a fitted (adaptive) threshold spike rule. See :mod:`qsnmc_plugins.arx.model`.

Heavy work happens only in ``fit``/``predict``; importing this package loads numpy and scipy only.
"""
from qsnmc import hookimpl


@hookimpl
def qsnmc_register_models() -> list:
    from qsnmc_plugins.arx.model import ArxModel

    return [ArxModel]
