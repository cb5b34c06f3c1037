"""The MAT model's settings: one frozen dataclass, overridden through the model's constructor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from qsnmc import SettingsError, setting


@dataclass(frozen=True)
class MATSettings:
    """The MAT model's settings (defaults chosen on held-out training data, benchmarks/README.md "MAT")."""

    count_penalty: float = setting(0.3, "weight of the spike-count error subtracted from Gamma/R", min=0.0)
    count_error_stimuli: Literal["included", "every"] = setting(
        "every", "stimuli the count error averages over: those in P, or every one")
    n_kernels: Literal["auto", 1, 2, 3] = setting(
        "auto", "threshold kernels; auto: each of auto_kernels, the best on the held-out part")
    auto_kernels: tuple[int, ...] = setting((2, 3), "kernel counts that n_kernels='auto' chooses among")
    heldout_fraction: float = setting(0.2, "share of each training window held out to choose the kernel count",
                                      min=0.01, max=0.99)
    generations: int = setting(40, "generations of differential evolution at budget 1", min=1)
    popsize: int = setting(6, "population of differential evolution, per searched parameter", min=1)
    threshold_tau_bounds_s: tuple[tuple[float, float], ...] = setting(
        ((0.003, 0.060), (0.060, 3.0), (1.0, 30.0)), "search range of each threshold kernel's time constant (s)")
    membrane_taus_s: tuple[float, ...] = setting(
        tuple(float(t) for t in np.geomspace(0.002, 0.080, 16)), "candidate membrane time constants (s)")
    membrane_cut_s: tuple[float, float] = setting(
        (0.003, 0.020), "voltage left out before / after each recorded spike for the membrane fit (s)")
    latency_bounds_ms: tuple[float, float] = setting(
        (-3.0, 6.0), "search range of the spike latency from the start of the crossing step (ms)")
    model_step_s: float = setting(0.0005, "model step (s): the potential's maximum over each step meets the "
                                          "threshold; coarser recordings run at their own step", min=1e-6)
    refractory_s: float = setting(0.002, "absolute refractory period (s), as published", min=0.0)

    def __post_init__(self) -> None:
        most = len(self.threshold_tau_bounds_s)
        counts = self.auto_kernels if self.n_kernels == "auto" else (self.n_kernels,)
        if not counts or any(not 1 <= k <= most for k in counts):
            raise SettingsError(f"mat: kernel counts must be 1 to {most} (one per threshold_tau_bounds_s), got {counts}")
