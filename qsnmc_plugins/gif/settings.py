"""The GIF model's settings: one frozen dataclass, overridden only through the model's constructor.

Defaults and the measurements behind them: benchmarks/README.md, section "gif".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from qsnmc import SettingsError, setting


@dataclass(frozen=True)
class GIFSettings:
    """Every setting of the GIF fit and prediction (times in s, levels in Hz)."""

    count_penalty: float = setting(0.1, "weight of the held-out count error in the merit", min=0.0)
    count_error_stimuli: Literal["included", "every"] = setting(
        "included", "stimuli the count error averages over: those in P, or every one")
    heldout_fraction: float = setting(0.25, "share of each training window held out", min=0.01, max=0.99)
    latency_grid_s: tuple[float, ...] = setting(
        (0.0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006),
        "latencies from threshold crossing to recorded spike (s), climbed while the held-out merit improves")
    default_latency_s: float = setting(0.003, "latency (s) where the climb starts; 0 s competes with it first",
                                       min=0.0)
    refractory_after_spike_s: float = setting(0.002, "refractory period after the recorded spike (s)", min=0.0)
    refractory_candidates_s: tuple[float, ...] = setting(
        (0.006,), "further refractory periods after the recorded spike (s) that compete on the held-out split")
    kernel_first_tau_s: float = setting(0.003, "first time constant of the eta and gamma bases (s)", min=1e-5)
    kernel_last_taus_s: tuple[float, ...] = setting(
        (10.0, 20.0), "last time constant of each candidate eta / gamma basis (s), chosen on the held-out split")
    kernel_sizes: tuple[int, ...] = setting((8, 9), "exponentials in each candidate basis (one per last time constant)")
    input_taus_s: tuple[float, ...] = setting(
        (0.002, 0.006), "time constants (s) of the filtered currents that drive the membrane beside the raw one")
    cut_before_s: float = setting(0.001, "left out of the membrane fits before each spike event (s)", min=0.0)
    eta_ridge: float = setting(1e-6, "relative ridge on the eta weights in the dV/dt regression", min=0.0)
    membrane_tau_bounds_s: tuple[float, float] = setting(
        (0.002, 0.2), "search range of the membrane time constant in the voltage refit (s)")
    voltage_fit_stride: int = setting(2, "every this-many-th kept bin enters the voltage refit", min=1)
    threshold_ridge_per_spike: float = setting(1e-4, "ridge per spike on the gamma coefficients", min=0.0)
    voltage_coupling: bool = setting(True, "whether a threshold coupled to the voltage (iGIF) competes")
    coupling_margin: float = setting(0.02, "merit by which the coupled threshold must beat the plain one",
                                     min=0.0)
    coupling_taus_s: tuple[float, ...] = setting((0.002, 0.02, 0.2), "candidate coupling filter time constants (s)")
    coupling_onset_quantiles: tuple[float, ...] = setting(
        (0.25, 0.5, 0.75), "candidate coupling onsets, as quantiles of the model's subthreshold voltage")
    levels_hz: tuple[float, ...] = setting(tuple(float(x) for x in np.geomspace(3.0, 1000.0, 16)),
                                           "hazard levels (Hz) of the deterministic readout's candidates")
    count_scales: tuple[float, ...] = setting(
        (0.8, 1.0, 1.25), "count-matched readouts: multiples of the expected spike count a level is matched to")
    count_samples: int = setting(16, "sampled trains estimating the expected count of a count-matched readout", min=1)
    model_step_s: float = setting(0.0005, "model step (s), a whole number of recording samples", min=1e-6)

    def __post_init__(self) -> None:
        if len(self.kernel_last_taus_s) != len(self.kernel_sizes) or not self.kernel_sizes:
            raise SettingsError(f"gif: kernel_last_taus_s and kernel_sizes must pair up, got "
                                f"{self.kernel_last_taus_s} and {self.kernel_sizes}")
        if self.default_latency_s not in self.latency_grid_s:
            raise SettingsError(f"gif: default_latency_s {self.default_latency_s} is not on latency_grid_s "
                                f"{self.latency_grid_s}")
        if not self.levels_hz:
            raise SettingsError("gif: levels_hz must hold at least one level")
