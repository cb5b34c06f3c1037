"""The training recording on the network's grid, and the free-run scores computed on it during a fit."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qsnmc import intrinsic_reliability

from qsnmc_plugins.dendplrnn.freerun import FreeRunDiverged, NetworkParams, simulate
from qsnmc_plugins.dendplrnn.preprocessing import Scaling
from qsnmc_plugins.dendplrnn.readout import normalised_gamma, predicted_spikes


@dataclass(frozen=True)
class FitGrid:
    """The training recording on the network's grid (see :mod:`preprocessing`).

    Attributes:
        dt_s: network step (s).
        t0_s: time of step 0 (s): the start of the training window.
        voltage: (n_reps, n_steps) standardised voltage.
        inputs: (n_steps, n_in) network inputs (float32).
        spike_times_s: recorded spike times (s), one array per repetition.
        stop: first held-out step; training windows are drawn from ``[0, stop)``.
    """

    dt_s: float
    t0_s: float
    voltage: np.ndarray
    inputs: np.ndarray
    spike_times_s: list[np.ndarray]
    stop: int

    @property
    def n_steps(self) -> int:
        return self.voltage.shape[1]

    @property
    def end_s(self) -> float:
        """End of the training window (s)."""
        return self.t0_s + self.n_steps * self.dt_s

    @property
    def heldout_start_s(self) -> float:
        return self.t0_s + self.stop * self.dt_s

    def spikes_in(self, window_s: tuple[float, float]) -> list[np.ndarray]:
        """Each repetition's recorded spikes inside ``window_s``."""
        return [t[(t >= window_s[0]) & (t < window_s[1])] for t in self.spike_times_s]


@dataclass(frozen=True)
class ScoredWindow:
    """The recorded spikes in one stretch of the training window, and their reliability R."""

    window_s: tuple[float, float]
    spikes: list[np.ndarray]
    reliability: float
    delta_s: float

    @classmethod
    def of(cls, grid: FitGrid, window_s: tuple[float, float], delta_s: float) -> "ScoredWindow":
        spikes = grid.spikes_in(window_s)
        return cls(window_s, spikes, intrinsic_reliability(spikes, delta_s, duration=window_s[1] - window_s[0]), delta_s)

    def gamma_over_R(self, voltage_mV: np.ndarray, dt_s: float, threshold_mV: float, t0_s: float) -> float:
        """Mean Gamma_i / R of the upward crossings of ``threshold_mV`` by a voltage starting at ``t0_s``."""
        predicted = predicted_spikes(voltage_mV, dt_s, threshold_mV, t0_s, self.window_s)
        duration = self.window_s[1] - self.window_s[0]
        return normalised_gamma(self.spikes, predicted, self.delta_s, duration, self.reliability)


class FreeRunScores:
    """Gamma/R of a network's free runs on the training recording, best detection threshold or a given one.

    - the selection score (:meth:`whole_window`): a free run from rest over the whole training
      window, the first ``warmup_s`` excluded; it chooses restarts and checkpoints;
    - the held-out score (:meth:`heldout`): a free run over the held-out part after ``warmup_s``
      of teacher forcing on the median voltage over repetitions.
    """

    def __init__(self, grid: FitGrid, scaling: Scaling, delta_s: float, warmup_s: float,
                 thresholds_mV: tuple[float, ...]) -> None:
        self.grid, self.scaling, self.thresholds_mV = grid, scaling, thresholds_mV
        self.warm_steps = int(round(warmup_s / grid.dt_s))
        self.heldout_window = ScoredWindow.of(grid, (grid.heldout_start_s, grid.end_s), delta_s)
        self.selection_window = ScoredWindow.of(grid, (grid.t0_s + warmup_s, grid.end_s), delta_s)
        self.median_voltage = np.median(grid.voltage, axis=0)

    def heldout(self, params: NetworkParams, threshold_mV: float | None = None,
                shift_s: float = 0.0) -> tuple[float, float]:
        """(held-out Gamma/R, threshold in mV): at ``threshold_mV``, or the best of the thresholds when None.

        A diverging free run scores -inf.
        """
        g, lo, n = self.grid, self.grid.stop - self.warm_steps, self.grid.n_steps
        forcing = np.zeros(n - lo, bool)
        forcing[: self.warm_steps] = True
        fallback = self.thresholds_mV[0] if threshold_mV is None else threshold_mV
        try:
            pred, _ = simulate(params, g.inputs[lo:n].astype(np.float64), self.median_voltage[lo:n, None], forcing)
        except FreeRunDiverged:
            return -math.inf, fallback
        v = self.scaling.to_mV(pred[:, 0])
        best = (-math.inf, self.thresholds_mV[0])
        for th in self.thresholds_mV if threshold_mV is None else (threshold_mV,):
            best = max(best, (self.heldout_window.gamma_over_R(v, g.dt_s, th, g.t0_s + lo * g.dt_s + shift_s), th))
        return best

    def whole_window(self, params: NetworkParams) -> float:
        """Best-threshold Gamma/R of a free run from rest over the whole training window (-inf if it diverges)."""
        g = self.grid
        try:
            pred, _ = simulate(params, g.inputs.astype(np.float64), np.zeros((g.n_steps, 1)), None)
        except FreeRunDiverged:
            return -math.inf
        v = self.scaling.to_mV(pred[:, 0])
        return max(self.selection_window.gamma_over_R(v, g.dt_s, th, g.t0_s) for th in self.thresholds_mV)

    def of_network(self, net) -> float:
        """:meth:`whole_window` of a torch network (the checkpoint score during training)."""
        return self.whole_window(NetworkParams.from_module(net))
