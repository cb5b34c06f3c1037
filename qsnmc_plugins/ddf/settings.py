"""The DDF model's settings: one frozen dataclass, overridden only through the model's constructor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from qsnmc import setting

#: candidate structures, best guess first: (dimension, delay in map steps, input lag in map
#: steps, slow filter time constants in ms, number of centres, width factor); their held-out
#: scores on the embedded challenge are in benchmarks/README.md ("DDF")
STRUCTURES = (
    (4, 1, 0, (200.0,), 100, 1.0),
    (3, 1, 0, (200.0,), 100, 1.0),
    (5, 1, 0, (200.0,), 150, 1.0),
    (4, 1, 1, (200.0,), 100, 1.0),
    (4, 2, 0, (50.0, 300.0), 100, 1.0),
)


@dataclass(frozen=True)
class DDFSettings:
    """Settings of :class:`qsnmc_plugins.ddf.model.DDFModel`."""

    structures: tuple[Any, ...] = setting(STRUCTURES, "candidate structures, best guess first: [dimension, "
                                          "delay (map steps), input lag (map steps), slow filter time constants "
                                          "(ms), centres, width factor]")
    n_structures: Optional[int] = setting(None, "structures tried, from the first (None: the budget's share of "
                                          "them, at least one)", min=1)
    ridge_penalties: tuple[float, ...] = setting((1e-6, 1e-5, 1e-4, 1e-3), "relative ridge penalties tried for "
                                                 "every structure (one free run validates them all)")
    model_step_s: float = setting(0.5e-3, "the map's time step (s): block means of the recording (5 samples at "
                                          "10 kHz) cut the noise per step and let a short embedding span more "
                                          "time", min=1e-5)
    heldout_fraction: float = setting(0.2, "share of each training window held out to choose the structure",
                                      min=0.01, max=0.9)
    max_heldout_s: float = setting(6.0, "longest held-out part at budget 1 (s); scaled by the budget, by a "
                                        "quarter at the least", min=0.0)
    row_stride: int = setting(8, "every row_stride-th sample (plus every spike state) is a regression row", min=1)
    n_seeds: int = setting(3, "k-means seeds tried per structure at budget 1 (at least 2 at any budget): one "
                           "draw sometimes falls silent or runs away in free run", min=1)
    refit_tolerance: float = setting(0.05, "the chosen map's weights are refitted on the whole window when its "
                                     "held-out free run stays within this much Gamma/R of the validated one", min=0.0)
    kmeans_points: int = setting(60_000, "regression rows sampled as k-means points, shared among the "
                                 "repetitions (at least 2000 each)", min=1)
    kmeans_max_points: int = setting(40_000, "most points one k-means clustering sees (a random subset)", min=1)
    kmeans_iterations: int = setting(20, "k-means iterations", min=1)
    spike_centre_share: float = setting(0.3, "share of the RBF centres clustered from spike states", min=0.0, max=1.0)
    spike_state_window_s: tuple[float, float] = setting((0.001, 0.004), "a sample this long before / after a "
                                                        "recorded spike is a spike state (s)")
    slow_gain: float = setting(0.0, "gain of the slow filters inside the RBF input (0: they enter linearly "
                               "only; inside, free runs ran away)", min=0.0)
    linear_state: bool = setting(True, "the delay coordinates also enter linearly (a global restoring term)")
    runaway_slack: float = setting(0.15, "share of the training voltage range added on each side before a "
                                   "forecast counts as a runaway", min=0.0)
    rest_relaxation_s: float = setting(0.5, "time the map relaxes at zero current to find its resting state (s)",
                                       min=0.0)
