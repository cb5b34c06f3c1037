"""Fit the MAT threshold (omega, signed jumps alpha_k, time constants tau_k) and the spike latency.

As in Kobayashi, Tsubo & Shinomoto (2009) the threshold parameters maximise the
coincidence factor between the model's (deterministic) train and every training
repetition; here the score is the competition's (Gamma/R per stimulus, equal weights,
:class:`qsnmc.ValidationScore`) minus a penalty on wrong spike counts, and the kernels'
time constants and signs are fitted too. The search also picks the membrane time constant
among candidate leaky integrators (each fitted beforehand by least squares). The score is
a jagged function of the parameters (spike counts change in steps), so the search is
global: ``scipy.optimize.differential_evolution``, no gradient step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qsnmc import CountPenalty, SearchProgress, ValidationScore, clip_to_window, score_trains, stretch_reliability

from qsnmc_plugins.mat.threshold import simulate_spike_indices


@dataclass(frozen=True)
class ThresholdParams:
    """Threshold and output parameters of a MAT neuron.

    Attributes:
        omega_mV: resting threshold (mV).
        alphas_mV: threshold jump per spike of each kernel (mV, signed: negative facilitates).
        taus_s: decay time constant of each kernel (s).
        latency_s: delay from the threshold crossing to the reported spike time (s).
        membrane: index of the candidate membrane filter the neuron uses.
    """

    omega_mV: float
    alphas_mV: tuple[float, ...]
    taus_s: tuple[float, ...]
    latency_s: float = 0.0
    membrane: int = 0

    @classmethod
    def from_vector(cls, x: Sequence[float], n_kernels: int) -> "ThresholdParams":
        """From the optimiser's vector ``(membrane position, omega mV, jump_1..K, log10 tau_1..K s, latency ms)``.

        The membrane position is continuous; its integer part picks the filter. The first
        kernel's jump is its ``alpha`` (mV); a slower kernel's is its steady threshold rise
        at 10 Hz, ``alpha tau x 10 Hz`` (mV), so one range suits every time constant.
        """
        k = n_kernels
        taus = tuple(float(10.0 ** t) for t in x[2 + k : 2 + 2 * k])
        alphas = tuple(float(a) if j == 0 else float(a) / (RISE_RATE_HZ * tau)
                       for j, (a, tau) in enumerate(zip(x[2 : 2 + k], taus)))
        return cls(float(x[1]), alphas, taus, float(x[-1]) * 1e-3, int(np.floor(x[0])))


#: the firing rate at which a slow kernel's jump is expressed as a steady threshold rise (Hz)
RISE_RATE_HZ = 10.0


@dataclass(eq=False)
class Segment:
    """A stretch of one training stimulus on which Gamma is measured.

    Attributes:
        stimulus: index of the stimulus (into the objective's potentials).
        name: the stimulus' name.
        window_s: the stretch (s, absolute protocol time, half-open).
        recordings: recorded spike times (s) inside the stretch, one array per repetition.
    """

    stimulus: int
    name: str
    window_s: tuple[float, float]
    recordings: list[np.ndarray]


def spike_times(potential_mV: np.ndarray, dt_s: float, params: ThresholdParams, refractory_s: float,
                max_rate_hz: float | None = None) -> np.ndarray:
    """Spike times (s, from sample 0 of ``potential_mV``) of a MAT neuron, latency included."""
    max_spikes = None if max_rate_hz is None else int(max_rate_hz * potential_mV.size * dt_s) + 1
    k = simulate_spike_indices(potential_mV, dt_s, params.omega_mV, params.alphas_mV, params.taus_s, refractory_s,
                               max_spikes)
    return k * dt_s + params.latency_s


class MATObjective:
    """The competition's score of a MAT neuron on training segments, for candidate membrane potentials.

    Each segment is scored with :func:`qsnmc.score_trains` (its own R); the objective is
    P of the resulting :class:`qsnmc.ValidationScore` (Gamma/R over segments with R >= 0.3,
    equal weights) minus a :class:`qsnmc.CountPenalty` (by default over every segment, low-R
    ones included: a silent model on a barely reliable stimulus is still wrong).

    Args:
        potentials_mV: per candidate membrane filter, per stimulus, the membrane
            potential from protocol time 0 (mV), one value per model step.
        dt_s: model step (s).
        delta_s: coincidence window (s).
        penalty: the spike-count penalty subtracted from P.
        refractory_s: absolute refractory period (s).
    """

    def __init__(self, potentials_mV: Sequence[Sequence[np.ndarray]], dt_s: float, delta_s: float,
                 penalty: CountPenalty, refractory_s: float) -> None:
        self.potentials_mV = [list(p) for p in potentials_mV]
        self.dt_s = dt_s
        self.delta_s = delta_s
        self.penalty = penalty
        self.refractory_s = refractory_s
        #: a model rate that cannot score (2 nu delta >= 1) stops the simulation early
        self.max_rate_hz = 1.0 / (2.0 * delta_s)
        self.n_evaluations = 0
        self._reliability: dict[int, float] = {}

    def trains(self, params: ThresholdParams, segments: Sequence[Segment]) -> list[np.ndarray]:
        """The model's spike times (s) inside each segment."""
        stops: dict[int, float] = {}
        for seg in segments:
            stops[seg.stimulus] = max(stops.get(seg.stimulus, 0.0), seg.window_s[1])
        membrane = min(max(params.membrane, 0), len(self.potentials_mV) - 1)
        full = {}
        for i, stop in stops.items():
            v = self.potentials_mV[membrane][i]
            n = min(v.size, int(np.ceil(stop / self.dt_s)) + 1)
            full[i] = spike_times(v[:n], self.dt_s, params, self.refractory_s, self.max_rate_hz)
        return [clip_to_window(full[seg.stimulus], seg.window_s) for seg in segments]

    def score(self, params: ThresholdParams, segments: Sequence[Segment]) -> ValidationScore:
        """Every segment scored the competition's way (R cached per segment)."""
        self.n_evaluations += 1
        out = []
        for seg, pred in zip(segments, self.trains(params, segments)):
            if id(seg) not in self._reliability:
                self._reliability[id(seg)] = stretch_reliability(seg.recordings, seg.window_s, self.delta_s)
            out.append(score_trains(seg.name, seg.recordings, pred, seg.window_s, self.delta_s,
                                    reliability=self._reliability[id(seg)]))
        return ValidationScore(tuple(out))

    def value(self, params: ThresholdParams, segments: Sequence[Segment]) -> float:
        """P minus the count penalty (higher is better)."""
        return self.penalty.objective(self.score(params, segments))


def search_threshold(objective: MATObjective, segments: Sequence[Segment], bounds: Sequence[tuple[float, float]],
                     n_kernels: int, *, generations: int, popsize: int, seed: int,
                     progress: SearchProgress | None = None) -> tuple[ThresholdParams, float, list[float]]:
    """Global search of ``(membrane position, omega, jumps, log10 taus, latency ms)`` maximising the objective on ``segments``.

    Returns:
        The best parameters, their objective, and the best objective after each generation.
    """
    from scipy.optimize import differential_evolution

    history: list[float] = []

    def loss(x: np.ndarray) -> float:
        return -objective.value(ThresholdParams.from_vector(x, n_kernels), segments)

    def on_generation(intermediate_result) -> None:
        history.append(-float(intermediate_result.fun))
        if progress is not None:
            progress.step(best=history[-1])

    result = differential_evolution(loss, bounds=list(bounds), maxiter=generations, popsize=popsize,
                                    init="latinhypercube", seed=seed, tol=0.0, polish=False, callback=on_generation)
    return ThresholdParams.from_vector(result.x, n_kernels), -float(result.fun), history
