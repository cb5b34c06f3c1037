"""The small synthetic challenge of :mod:`qsnmc.testing` (a noisy LIF), written to a folder for the
harness's own tests: 4 repetitions of a 20 s fluctuating current at 2 kHz, training 0-14 s, test 14-20 s.
"""
from __future__ import annotations

from pathlib import Path

from qsnmc.challenges.store import write_challenge
from qsnmc.testing.synthetic import DT_S, simulate_noisy_lif, synthetic_challenge

__all__ = ["DT_S", "simulate_noisy_lif", "write_synthetic_challenge"]


def write_synthetic_challenge(folder: Path, name: str = "synthetic-test", n_stimuli: int = 1) -> Path:
    """The test LIF on ``n_stimuli`` stimuli (A, B, ...: different currents, same neuron)."""
    return write_challenge(folder, synthetic_challenge(name, n_stimuli))
