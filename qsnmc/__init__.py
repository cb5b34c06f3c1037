"""qsnmc: a benchmark harness for single-neuron spike-time prediction.

Public API:
- :data:`hookimpl`: mark a plugin's ``qsnmc_register_models`` implementation.
- :class:`Model`: the base class a model may derive from.
- :class:`TrainingData`, :class:`TrainingStimulus`, :class:`Stimulus`: what a model receives.
- :mod:`qsnmc.scoring`: the official coincidence factor and score.
"""
from qsnmc.hookspecs import hookimpl
from qsnmc.data import Stimulus, TrainingData, TrainingStimulus
from qsnmc.model import Model

__version__ = "0.1.0"
__all__ = ["hookimpl", "Model", "Stimulus", "TrainingData", "TrainingStimulus", "__version__"]
