"""Fit the MAT threshold (omega, alpha_k) and the spike latency by maximising the coincidence factor.

As in Kobayashi, Tsubo & Shinomoto (2009): the threshold parameters maximise the
mean coincidence factor Gamma between the model's (deterministic) train and every
training repetition. Here the search also picks the membrane time constant among
candidate leaky integrators (each fitted beforehand by least squares). Gamma is a jagged function of
the parameters (spike counts change in steps), so the search is global:
``scipy.optimize.differential_evolution``, no gradient step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from qsnmc import InvalidPrediction, coincidence_factor, intrinsic_reliability

from qsnmc_plugins.mat.threshold import PUBLISHED_TAUS_S, REFRACTORY_S, simulate_spike_indices

#: Gamma given to a parameter set whose train cannot be scored (rate too high)
INVALID_GAMMA = -1.0


@dataclass(frozen=True)
class ThresholdParams:
    """Threshold and output parameters of a MAT neuron.

    Attributes:
        omega_mV: resting threshold (mV).
        alphas_mV: threshold jump per spike of each kernel (mV).
        latency_s: delay from the threshold crossing to the reported spike time (s).
        membrane: index of the candidate membrane filter the neuron uses.
    """

    omega_mV: float
    alphas_mV: tuple[float, ...]
    latency_s: float = 0.0
    membrane: int = 0

    @classmethod
    def from_vector(cls, x: Sequence[float]) -> "ThresholdParams":
        """From the optimiser's vector ``(membrane position, omega mV, alpha_1 mV, ..., latency ms)``.

        The membrane position is continuous; its integer part picks the filter.
        """
        return cls(float(x[1]), tuple(float(a) for a in x[2:-1]), float(x[-1]) * 1e-3, int(np.floor(x[0])))


@dataclass(eq=False)
class Segment:
    """A stretch of one training stimulus on which Gamma is measured.

    Attributes:
        stimulus: index of the stimulus (into the objective's potentials).
        start_s, stop_s: the stretch (s, absolute protocol time).
        recordings: recorded spike times (s) inside the stretch, one array per repetition.
    """

    stimulus: int
    start_s: float
    stop_s: float
    recordings: list[np.ndarray] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.stop_s - self.start_s

    def reliability(self, delta_s: float) -> float:
        """Intrinsic reliability R of the recordings on this stretch (NaN with one repetition)."""
        if len(self.recordings) < 2:
            return float("nan")
        return intrinsic_reliability(self.recordings, delta_s, duration=self.duration_s)


def spike_times(
    potential_mV: np.ndarray,
    dt_s: float,
    params: ThresholdParams,
    taus_s: Sequence[float] = PUBLISHED_TAUS_S,
    refractory_s: float = REFRACTORY_S,
    max_rate_hz: float | None = None,
) -> np.ndarray:
    """Spike times (s, from sample 0 of ``potential_mV``) of a MAT neuron, latency included."""
    max_spikes = None if max_rate_hz is None else int(max_rate_hz * potential_mV.size * dt_s) + 1
    k = simulate_spike_indices(potential_mV, dt_s, params.omega_mV, params.alphas_mV, taus_s, refractory_s, max_spikes)
    return k * dt_s + params.latency_s


class GammaObjective:
    """Mean Gamma of a MAT neuron over training segments, for candidate membrane potentials.

    Args:
        potentials_mV: per candidate membrane filter, per stimulus, the membrane
            potential from protocol time 0 (mV), one value per model step.
        dt_s: sampling step (s).
        delta_s: coincidence window (s).
        taus_s: threshold kernel time constants (s).
    """

    def __init__(
        self,
        potentials_mV: Sequence[Sequence[np.ndarray]],
        dt_s: float,
        delta_s: float,
        taus_s: Sequence[float] = PUBLISHED_TAUS_S,
        refractory_s: float = REFRACTORY_S,
    ) -> None:
        self.potentials_mV = [list(p) for p in potentials_mV]
        self.dt_s = dt_s
        self.delta_s = delta_s
        self.taus_s = tuple(taus_s)
        self.refractory_s = refractory_s
        #: a model rate that cannot score (2 nu delta >= 1) stops the simulation early
        self.max_rate_hz = 1.0 / (2.0 * delta_s)
        self.n_evaluations = 0

    def segment_gammas(self, params: ThresholdParams, segments: Sequence[Segment]) -> np.ndarray:
        """Mean Gamma over repetitions, per segment (``INVALID_GAMMA`` where unscorable)."""
        self.n_evaluations += 1
        out = np.empty(len(segments))
        stops: dict[int, float] = {}
        for seg in segments:
            stops[seg.stimulus] = max(stops.get(seg.stimulus, 0.0), seg.stop_s)
        trains = {}
        membrane = min(max(params.membrane, 0), len(self.potentials_mV) - 1)
        for i, stop in stops.items():
            v = self.potentials_mV[membrane][i]
            n = min(v.size, int(np.ceil(stop / self.dt_s)) + 1)
            trains[i] = spike_times(v[:n], self.dt_s, params, self.taus_s, self.refractory_s, self.max_rate_hz)
        for j, seg in enumerate(segments):
            t = trains[seg.stimulus]
            pred = t[(t >= seg.start_s) & (t < seg.stop_s)]
            try:
                out[j] = np.mean(
                    [coincidence_factor(r, pred, self.delta_s, duration=seg.duration_s) for r in seg.recordings]
                )
            except InvalidPrediction:
                out[j] = INVALID_GAMMA
        return out

    def mean_gamma(self, params: ThresholdParams, segments: Sequence[Segment]) -> float:
        """Mean Gamma over segments (each segment weighted by its duration)."""
        g = self.segment_gammas(params, segments)
        w = np.array([s.duration_s for s in segments])
        return float(np.sum(g * w) / np.sum(w))


def search_threshold(
    objective: GammaObjective,
    segments: Sequence[Segment],
    bounds: Sequence[tuple[float, float]],
    *,
    generations: int,
    popsize: int,
    seed: int,
    callback: Callable[[float], None] | None = None,
) -> tuple[ThresholdParams, float, list[float]]:
    """Global search of ``(membrane position, omega, alpha_1..K, latency ms)`` maximising mean Gamma on ``segments``.

    Returns:
        The best parameters, their mean Gamma, and the best Gamma after each generation.
    """
    from scipy.optimize import differential_evolution

    history: list[float] = []

    def loss(x: np.ndarray) -> float:
        return -objective.mean_gamma(ThresholdParams.from_vector(x), segments)

    def on_generation(intermediate_result) -> None:
        history.append(-float(intermediate_result.fun))
        if callback is not None:
            callback(history[-1])

    result = differential_evolution(
        loss,
        bounds=list(bounds),
        maxiter=generations,
        popsize=popsize,
        init="latinhypercube",
        seed=seed,
        tol=0.0,
        polish=False,
        callback=on_generation,
    )
    return ThresholdParams.from_vector(result.x), -float(result.fun), history


def model_spike_times(objective: GammaObjective, params: ThresholdParams, segment: Segment) -> np.ndarray:
    """The model's spike times (s) inside one segment."""
    v = objective.potentials_mV[params.membrane][segment.stimulus]
    n = min(v.size, int(np.ceil(segment.stop_s / objective.dt_s)) + 1)
    t = spike_times(v[:n], objective.dt_s, params, objective.taus_s, objective.refractory_s)
    return t[(t >= segment.start_s) & (t < segment.stop_s)]
