"""The ARX model's settings: one frozen dataclass, overridden only through the model's constructor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qsnmc import setting


@dataclass(frozen=True)
class ArxSettings:
    """Settings of :class:`qsnmc_plugins.arx.model.ArxModel` (defaults: benchmarks/README.md, "ARX")."""

    # -- fit and held-out split
    model_step_s: float = setting(0.001, "model step (s): a quarter of the 4 ms coincidence window", min=1e-5)
    heldout_fraction: float = setting(0.2, "share of each training window held out to choose orders and "
                                           "output-error iterations, and to score the spike rule", min=0.01, max=0.9)
    reduced_search_below: float = setting(0.5, "a budget below this searches a reduced grid of orders", min=0.0)
    min_rule_fit_s: float = setting(5.0, "shortest stretch of training (s) the spike rule is fitted on at a "
                                    "small budget", min=0.0)
    # -- structure search (orders of the ARX equation)
    voltage_orders: tuple[int, ...] = setting((1, 2, 3, 4, 6), "autoregressive orders tried (lags of 1 step)")
    current_orders: tuple[int, ...] = setting((1, 2, 4, 8), "current orders tried (lags 0..n-1)")
    ridges: tuple[float, ...] = setting((1e-6, 1e-3), "ridge penalties tried, relative to each regressor's "
                                        "sum of squares")
    max_validation_reps: int = setting(4, "repetitions the held-out voltage error is computed on", min=1)
    max_pole_radius: float = setting(0.999, "largest pole radius accepted (about 1 s at a 1 ms step)",
                                     min=0.0, max=1.0)
    output_error_iterations: int = setting(6, "most Steiglitz-McBride refits (output-error refinement)", min=0)
    # -- recorded spikes cut out of the voltage (s around the 0 mV crossing)
    cut_before_s: float = setting(0.0005, "upstroke removed before the 0 mV crossing (s)", min=0.0)
    cut_after_s: float = setting(0.0025, "repolarisation removed after the 0 mV crossing (s)", min=0.0)
    # -- spike-history basis: free lags, then raised cosines on a log time axis
    fine_s: float = setting(0.004, "span of the free lags of the spike-history kernel (s)", min=0.0)
    last_peak_s: float = setting(0.4, "peak of the last raised cosine of the spike-history basis (s)", min=0.0)
    n_cosines: int = setting(10, "raised cosines available to the order search", min=1)
    log_offset_s: float = setting(0.002, "offset of the basis' logarithmic time axis (s)", min=0.0)
    # -- spike rule: adaptive threshold on the free-running voltage
    refractory_s: float = setting(0.002, "absolute refractory period (s)", min=0.0)
    latency_grid_s: tuple[float, ...] = setting((-0.001, 0.0071, 0.0005), "onset-to-spike latencies tried: "
                                                "start, stop (excluded), step (s)")
    n_thresholds: int = setting(24, "fixed thresholds tried before the global search", min=1)
    threshold_range_mV: float = setting(6.0, "the threshold is searched within this distance of the best "
                                        "fixed one (mV)", min=0.0)
    adaptation_bounds_mV: tuple[float, float] = setting((-3.0, 30.0), "search range of the threshold jump (mV)")
    adaptation_tau_bounds_s: tuple[float, float] = setting((0.005, 2.0), "search range of the threshold's time "
                                                           "constant (s)")
    generations: int = setting(20, "differential-evolution generations at budget 1", min=1)
    popsize: int = setting(6, "differential-evolution population per searched parameter", min=1)
    count_penalty: float = setting(1.0, "weight of the spike-count error in the spike rule's objective", min=0.0)
    count_error_stimuli: Literal["included", "every"] = setting(
        "every", "stimuli the count error averages over: every one (a count means something where R is low too)")
