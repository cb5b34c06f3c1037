"""Free runs over the held-out part of a time split, and the readouts chosen on them.

Each held-out stimulus is predicted as a test window is: the network is teacher-forced on
the median voltage of the last ``warmup_s`` of that stimulus' fit part, then runs freely
on the current through the held-out window. An ensemble's members run side by side and
their voltages (mV) and hazards are averaged before spike detection.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from qsnmc import HeldOutStimulus, clip_to_window, spike_times_from_voltage

from qsnmc_plugins.dendplrnn.freerun import FreeRunDiverged, NetworkParams, free_run
from qsnmc_plugins.dendplrnn.preprocessing import Scaling
from qsnmc_plugins.hazard.heldout import HeldOutScorer
from qsnmc_plugins.hazard.readout import Readout, choose_readout as choose_hazard_readout, spikes_from_hazard

if TYPE_CHECKING:
    from qsnmc_plugins.dendplrnn.settings import DendPLRNNSettings


@dataclass(frozen=True)
class SpikeReadout:
    """How spike times are read from a (mean) free run.

    ``kind`` is ``"hazard"`` (peak-picking of the spike probability, :mod:`qsnmc_plugins.hazard.readout`)
    or ``"voltage"`` (upward crossings of ``threshold_mV``, shifted by ``shift_s``; the harness's own
    detector on the network's grid).
    """

    kind: str
    hazard: Readout | None = None
    threshold_mV: float = -35.0
    shift_s: float = 0.0

    def as_record(self) -> dict:
        return asdict(self)  # the hazard readout's record too

    def spikes(self, voltage_mV: np.ndarray, hazard: np.ndarray, t0_s: float, dt_s: float,
               window_s: tuple[float, float]) -> np.ndarray:
        """Spike times (s) inside ``window_s`` from a run whose step 0 starts at ``t0_s``."""
        if self.kind == "hazard":
            return spikes_from_hazard(hazard, t0_s, dt_s, self.hazard, window_s)
        t = spike_times_from_voltage(voltage_mV, dt_s, threshold_mV=self.threshold_mV, t0_s=t0_s + self.shift_s)
        return clip_to_window(t, window_s)


def mean_run(params: list[NetworkParams], inputs: np.ndarray, observations: np.ndarray | None,
             forcing: np.ndarray | None, scaling: Scaling) -> tuple[np.ndarray, np.ndarray]:
    """Mean voltage (mV) and mean hazard per step of the networks' free runs (an ensemble's output).

    Raises:
        FreeRunDiverged: when any member's free run diverges.
    """
    vs, hs = [], []
    for p in params:
        v, h = free_run(p, inputs, observations, forcing)
        vs.append(scaling.to_mV(v))
        hs.append(h)
    return np.mean(vs, axis=0), np.mean(hs, axis=0)


class HeldOutRuns:
    """The held-out windows of a time split on the network grid, and their scores.

    Args:
        heldout: the fold's held-out stimuli.
        inputs: per stimulus name, the network inputs over the whole protocol (T, n_in), step k at k dt.
        warm_voltage: per stimulus name, the standardised median voltage of the fit part's last steps.
        dt_s: network step (s).
        settings: the model's settings: the hazard readout's grid, the voltage readout's detection
            levels (mV) and time shifts (s).
    """

    def __init__(self, heldout: tuple[HeldOutStimulus, ...], inputs: dict[str, np.ndarray],
                 warm_voltage: dict[str, np.ndarray], scaling: Scaling, dt_s: float, delta_s: float,
                 settings: DendPLRNNSettings) -> None:
        self.scorer = HeldOutScorer(heldout, delta_s)
        self.scaling, self.dt_s, self.settings = scaling, dt_s, settings
        self.runs = {}
        for h in heldout:
            w = warm_voltage[h.name]
            start = int(round(h.stimulus.window_s[0] / dt_s))
            stop = min(inputs[h.name].shape[0], int(math.ceil(h.stimulus.window_s[1] / dt_s)) + 1)
            lo = start - w.shape[0]
            obs = np.zeros((stop - lo, 1))
            obs[: w.shape[0], 0] = w
            forcing = np.arange(stop - lo) < w.shape[0]
            self.runs[h.name] = (lo, inputs[h.name][lo:stop].astype(np.float64), obs, forcing, h.stimulus.window_s)

    def outputs(self, params: list[NetworkParams]) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
        """Per stimulus: mean voltage (mV), mean hazard, and the time (s) of the run's step 0."""
        out = {}
        for name, (lo, x, obs, forcing, _) in self.runs.items():
            v, h = mean_run(params, x, obs, forcing, self.scaling)
            out[name] = (v, h, lo * self.dt_s)
        return out

    def predictions(self, outputs, readout: SpikeReadout) -> dict[str, np.ndarray]:
        """Spike times (s) per held-out stimulus of a readout applied to :meth:`outputs`."""
        return {k: readout.spikes(v, h, t0, self.dt_s, self.runs[k][4]) for k, (v, h, t0) in outputs.items()}

    def best_readout(self, params: list[NetworkParams], shifts_s: tuple[float, ...] | None = None
                     ) -> tuple[SpikeReadout, float]:
        """The readout (hazard, or voltage threshold and one of ``shifts_s``, by default the settings')
        with the highest held-out P for these networks (mean of their outputs), and that P;
        (voltage readout, -inf) when a free run diverges."""
        try:
            outs = self.outputs(params)
        except FreeRunDiverged:
            return SpikeReadout("voltage"), -math.inf
        hz, t0 = {k: o[1] for k, o in outs.items()}, {k: o[2] for k, o in outs.items()}
        r, p = choose_hazard_readout(hz, t0, self.dt_s, self.scorer, {k: self.runs[k][4] for k in outs}, self.settings)
        best = (SpikeReadout("hazard", hazard=r), p)
        for th in self.settings.voltage_thresholds_mV:
            for sh in self.settings.voltage_shifts_s if shifts_s is None else shifts_s:
                r = SpikeReadout("voltage", threshold_mV=float(th), shift_s=float(sh))
                p = self.scorer(self.predictions(outs, r))
                if p > best[1]:
                    best = (r, p)
        return best
