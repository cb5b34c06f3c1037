"""example-threshold: a complete qsnmc submission in one file (``qsnmc new NAME`` copies it).

Run it:     qsnmc run example-threshold       (fit on the training window, predict and score the test)
Sweep it:   qsnmc sweep example-threshold     (param_grid scored on held-out training data)
Report:     qsnmc report                      (raster, Gamma/R with error bars, ...)

A submission is a plain ``*.py`` file in ``submissions/``; the harness imports it in an
isolated (sandboxed) worker process and builds ``ExampleThreshold(seed=..., budget=..., **settings)``.

1. Subclass :class:`qsnmc.Model` (or write a class with the same members whose
   ``__init__`` takes ``seed`` and ``budget``, or no arguments at all).
2. ``fit(train)`` receives the public training data only (current in pA for the whole
   protocol, recorded voltage in mV and spike times in s inside the training window).
   Return a JSON-serialisable dict of what you fitted: it lands in the run record.
3. ``predict(stimulus)`` returns the predicted spike times in seconds, inside
   ``stimulus.window_s`` and strictly increasing: one array (deterministic) or one
   array per repetition (stochastic).
4. Register the class with the ``qsnmc_register_models`` hook.

The model: the current is low-pass filtered with a time constant tau; the neuron
spikes when the filtered current crosses a threshold, then stays silent for a dead
time. tau, threshold and dead time are chosen on a grid by the mean coincidence
factor against the training repetitions; ``n_thresholds`` (a setting, see ``param_grid``)
is how many threshold candidates the grid has.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

import qsnmc
from qsnmc import coincidence_factor


def _filtered(current_pA: np.ndarray, dt_s: float, tau_s: float) -> np.ndarray:
    """Current low-pass filtered with time constant ``tau_s`` (pA)."""
    a = np.exp(-dt_s / tau_s)
    return lfilter([1 - a], [1, -a], current_pA)


def _threshold_crossings(x: np.ndarray, theta: float, dead_samples: int) -> np.ndarray:
    """Sample indices where ``x`` rises through ``theta``, at most one per dead time."""
    ups = np.flatnonzero((x[:-1] < theta) & (x[1:] >= theta)) + 1
    kept: list[int] = []
    for k in ups:  # one pass over the (few) crossings, not over samples
        if not kept or k - kept[-1] >= dead_samples:
            kept.append(int(k))
    return np.asarray(kept, dtype=np.int64)


class ExampleThreshold(qsnmc.Model):
    name = "example-threshold"  # unique; shown in the table
    description = "example submission: threshold on the low-pass filtered current"
    param_grid = {"n_thresholds": [6, 12, 24]}  # what `qsnmc sweep` tries

    def __init__(self, seed: int = 0, budget: float = 1.0, n_thresholds: int = 12) -> None:
        super().__init__(seed, budget)
        self.n_thresholds = int(n_thresholds)

    def fit(self, train: qsnmc.TrainingData) -> dict:
        # train.stimuli: every training stimulus, each with current_pA (whole protocol),
        # window_s (s), voltage_mV and spike_times_s (recorded, inside the window only)
        dt = train.dt_s
        best = (-np.inf, None)
        for tau_s in (0.005, 0.01, 0.02, 0.04):
            xs = [_filtered(stim.current_pA, dt, tau_s)[stim.window_slice] for stim in train.stimuli]
            for dead_s in (0.005, 0.02, 0.05):
                for theta in np.percentile(np.concatenate(xs), np.linspace(90.0, 99.9, self.n_thresholds)):
                    gammas = []
                    for stim, x in zip(train.stimuli, xs):
                        spikes = stim.window_s[0] + _threshold_crossings(x, theta, int(dead_s / dt)) * dt
                        duration = stim.window_s[1] - stim.window_s[0]
                        gammas += [coincidence_factor(r, spikes, train.delta_s, duration=duration)
                                   for r in stim.spike_times_s]
                    if np.mean(gammas) > best[0]:
                        best = (float(np.mean(gammas)), (tau_s, dead_s, float(theta)))
        self.tau_s, self.dead_s, self.theta_pA = best[1]
        return {"tau_ms": 1e3 * self.tau_s, "dead_time_ms": 1e3 * self.dead_s,
                "threshold_pA": self.theta_pA, "training_gamma": best[0]}

    def predict(self, stimulus: qsnmc.Stimulus) -> np.ndarray:
        # stimulus.current_pA over the whole protocol; return spike times (s) inside stimulus.window_s
        dt = stimulus.dt_s
        x = _filtered(stimulus.current_pA, dt, self.tau_s)
        t = _threshold_crossings(x, self.theta_pA, int(self.dead_s / dt)) * dt
        start, stop = stimulus.window_s
        return t[(t >= start) & (t <= stop)]


@qsnmc.hookimpl
def qsnmc_register_models() -> list:
    return [ExampleThreshold]
