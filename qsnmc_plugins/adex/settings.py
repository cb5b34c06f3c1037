"""The AdEx's settings: one frozen dataclass, overridden only through the model's constructor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from qsnmc import setting

#: latencies tried on the validated candidates (ms): -6 to 3 ms in 0.25 ms steps
_LATENCY_GRID_MS = tuple(float(x) for x in np.round(np.arange(-6.0, 3.01, 0.25), 2))


@dataclass(frozen=True)
class AdExSettings:
    """Settings of both fitting stages and of the integration (units in the names)."""

    count_penalty: float = setting(0.1, "weight of the spike-count error in the stage-2 score (chosen on held-out "
                                   "data: benchmarks/README.md, 'AdEx: refitted for many stimuli')", min=0.0)
    count_error_stimuli: Literal["included", "every"] = setting(
        "included", "stimuli the count error averages over: those entering P, or every stimulus")
    heldout_fraction: float = setting(0.2, "last part of each training window held out from both stages; the "
                                           "validated candidates are chosen on it", min=0.01, max=0.99)
    generations_at_budget_1: int = setting(36, "differential-evolution generations after the initial population at "
                                           "budget 1 (scaled by the budget, at least 1)", min=1)
    population_at_budget_1: int = setting(100, "candidates per generation at budget 1 (2 x budget x this, "
                                          "between 20 and this)", min=2)
    n_segments: int = setting(10, "(stimulus, segment) columns simulated side by side during the search", min=1)
    n_validated: int = setting(8, "best candidates of the last generation re-simulated continuously and "
                               "scored on the held-out part", min=1)
    latency_grid_ms: tuple[float, ...] = setting(_LATENCY_GRID_MS, "spike latencies tried on each validated "
                                                 "candidate, chosen on the fit windows (ms)")
    min_reset_gap_mV: float = setting(1.0, "the reset lies at least this far below V_T (mV): above it the AdEx "
                                      "fires tonically", min=0.0)
    tauw2_range_ms: tuple[float, float] = setting((1000.0, 30000.0), "range of the slow spike-triggered current's "
                                                  "time constant (ms, searched on a log scale)")
    vpeak_mV: float = setting(0.0, "the voltage at which a spike is emitted (mV): the harness detects spikes at 0 mV",
                              min=-50.0, max=100.0)
    model_step_s: float = setting(2e-4, "integration step (s) for fitting and prediction alike, the current averaged "
                                        "over it; moves spikes by < 0.2 ms against a 4 ms window", min=1e-6)
    max_model_step_s: float = setting(2.5e-4, "longest integration step (s): coarser data is integrated in substeps "
                                              "of at most this (forward Euler at 1 ms misplaces the upswing)", min=1e-6)
    iv_cut_before_s: float = setting(0.0005, "stage 1 cuts samples from this long before a spike's 0 mV "
                                     "crossing (s) ...", min=0.0)
    iv_cut_after_s: float = setting(0.030, "... to this long after it (spike, repolarisation, AHP) (s)", min=0.0)
    iv_v_cap_mV: float = setting(-30.0, "only voltages below this enter the dynamic I-V curve (mV)",
                                  min=-100.0, max=0.0)
    iv_bin_mV: float = setting(0.5, "width of the voltage bins of the I-V curve (mV)", min=0.01)
    iv_min_bin_samples: int = setting(50, "samples a voltage bin needs to enter the curve fit", min=1)
    adaptation_taus_ms: tuple[float, ...] = setting((30.0, 100.0, 300.0, 1000.0, 3000.0), "time constants of the "
                                                    "spike-triggered currents regressed out with the leak (ms)")
    slow_tau_ms: float = setting(1000.0, "kernels at or above this time constant (ms) make up the slow current's "
                                 "starting guess, the others w's", min=0.0)
    coarse_dt_s: float = setting(0.00025, "data sampled coarser than this (s) cannot resolve spike initiation: "
                                 "Delta_T is then bounded and searched in stage 2", min=0.0)
    coarse_max_delta_t_mV: float = setting(4.0, "upper bound on Delta_T for such data (mV; Badel et al. 2008: ~1-3 mV)",
                                           min=0.1)
