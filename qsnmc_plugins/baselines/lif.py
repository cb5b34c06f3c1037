"""Leaky integrate-and-fire baseline: a fitted membrane, a threshold, a reset and a spike latency.

``fit`` (training window only) runs three named steps:

1. :func:`fit_membrane`: ``dV/dt = (E_L - V) / tau_m + I / C`` by linear least squares on the
   subthreshold voltage of the first part of each training window (``train.time_split``; bins of
   the model step, spikes and their after-potential cut out).
2. :func:`search_grid`: threshold ``theta`` and reset ``V_r`` (mV) on a grid, each pair simulated
   once and its train shifted by every latency of the grid (s: a recorded spike marks the action
   potential's upstroke, a few ms after the voltage leaves the subthreshold range the LIF's
   threshold stands for). Each candidate is scored on the held-out rest of each window by the
   competition's rule (:class:`qsnmc.ValidationScore`: Gamma/R per stimulus, stimuli weighted
   equally, stimuli whose R is under 0.3 left out), minus ``count_penalty`` times the mean
   |log count ratio| over the included stimuli (:class:`qsnmc.CountPenalty`), so that a threshold
   that fits one stimulus by firing far too often on another loses. The best candidate is kept;
   its held-out score is the fit record's ``held_out``.
3. The refit: the membrane fitted again on the whole training window; the chosen threshold and reset
   keep their distance to E_L (the grid is laid out from E_L), the latency is kept. A window too short
   to split is searched in-sample (``held_out`` is then None).

A 2 ms absolute refractory period; the model is deterministic (one train for all repetitions).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from qsnmc import (Candidate, CountPenalty, HeldOutStimulus, Model, Stimulus, TrainingData, TrainingStimulus,
                   ValidationScore, best_candidate, block_mean, candidates_record, clip_to_window, fit_record,
                   held_out_record, linear_least_squares, samples_per_step, score_trains, setting, settings_record,
                   spike_window_mask, stretch_reliability)

#: candidates of the grid kept in the fit record (best objective first)
RECORDED_CANDIDATES = 10


@dataclass(frozen=True)
class LIFSettings:
    """The LIF's settings (units in the names)."""

    count_penalty: float = setting(0.1, "weight of the spike-count error in the grid objective (chosen on held-out "
                                   "data: benchmarks/README.md, 'LIF: the threshold objective and its count penalty')",
                                   min=0.0)
    count_error_stimuli: Literal["included", "every"] = setting(
        "included", "stimuli the count error averages over: those entering P, or every stimulus")
    model_step_s: float = setting(0.0005, "simulation step (s): 8x finer than the 4 ms coincidence window", min=1e-6)
    refractory_s: float = setting(0.002, "absolute refractory period (s)", min=0.0)
    cut_before_s: float = setting(0.003, "voltage left out of the membrane fit before each spike (s)", min=0.0)
    cut_after_s: float = setting(0.025, "voltage left out of the membrane fit after each spike (s)", min=0.0)
    n_thresholds: int = setting(32, "threshold grid size, from E_L + 2 mV to 10 mV above the 99.5th voltage "
                                "percentile", min=2)
    reset_offsets_mV: tuple[float, ...] = setting((-15.0, -10.0, -5.0, 0.0, 5.0, 10.0),
                                                  "reset grid, relative to E_L (mV); resets at or above theta skipped")
    latencies_s: tuple[float, ...] = setting((0.0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006),
                                             "latency grid (s): predicted spikes are the crossings this much later")
    heldout_fraction: float = setting(0.4, "last share of each training window that scores the grid search (chosen "
                                      "on held-out data: benchmarks/README.md, 'LIF: the grid chosen on held-out "
                                      "data')", min=0.01, max=0.99)


@dataclass(frozen=True)
class Membrane:
    """The fitted passive membrane: ``dV/dt = (E_L - V) / tau_m + gain I``."""

    tau_m_s: float
    gain_mV_per_s_per_pA: float  #: 1 / C, C in nF
    e_leak_mV: float


def _membrane_rows(s: TrainingStimulus, factor: int, step: float, settings: LIFSettings
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Regression rows ``[V, I, 1]`` and targets dV/dt (mV/s) of one training stimulus, on bins
    of ``step`` s, leaving out the voltage around each spike."""
    v = block_mean(s.voltage_mV, factor)  # (reps, n_bins)
    i = block_mean(s.window_current_pA, factor)
    before, after = int(settings.cut_before_s / step), int(settings.cut_after_s / step)
    keep = ~np.array([spike_window_mask(((spikes - s.window_s[0]) / step).astype(int), v.shape[1], before, after)
                      for spikes in s.spike_times_s])
    ok = keep[:, :-1] & keep[:, 1:]
    dv = (v[:, 1:] - v[:, :-1]) / step
    x = np.stack([v[:, :-1][ok], np.broadcast_to(i[:-1], v[:, :-1].shape)[ok], np.ones(ok.sum())], axis=1)
    return x, dv[ok]


def fit_membrane(train: TrainingData, settings: LIFSettings) -> Membrane:
    """``dV/dt = a V + b I + c`` by least squares on the binned subthreshold voltage of every stimulus.

    Raises:
        RuntimeError: an unphysical fit (a >= 0 or b <= 0).
    """
    factor = samples_per_step(train.dt_s, settings.model_step_s)
    step = train.dt_s * factor
    rows, targets = zip(*(_membrane_rows(s, factor, step, settings) for s in train.stimuli))
    a, b, c = linear_least_squares(np.concatenate(rows), np.concatenate(targets))
    if a >= 0 or b <= 0:
        raise RuntimeError(f"membrane fit unphysical: dV/dt = {a:.3g} V + {b:.3g} I + {c:.3g}")
    return Membrane(tau_m_s=-1.0 / a, gain_mV_per_s_per_pA=b, e_leak_mV=-c / a)


def simulate(m: Membrane, current_pA: np.ndarray, dt_s: float, theta: np.ndarray, reset: np.ndarray,
             window_s: tuple[float, float], settings: LIFSettings) -> list[np.ndarray]:
    """Threshold-crossing times (s) in ``window_s`` for each (theta, reset) pair (mV), from rest 0.5 s before."""
    factor = samples_per_step(dt_s, settings.model_step_s)
    step = dt_s * factor
    i = block_mean(current_pA, factor)
    k0 = max(0, int((window_s[0] - 0.5) / step))
    k1 = min(i.size, int(np.ceil(window_s[1] / step)))
    decay = np.exp(-step / m.tau_m_s)
    gain = (1.0 - decay) * m.tau_m_s * m.gain_mV_per_s_per_pA  # exact for piecewise-constant I
    drive = m.e_leak_mV * (1 - decay) + gain * i[k0:k1]
    v = np.full(theta.shape, m.e_leak_mV)
    refr = np.zeros(theta.shape, dtype=np.int64)
    n_refr = int(round(settings.refractory_s / step))
    spikes_k, spikes_j = [], []
    for k in range(k1 - k0):
        v = v * decay + drive[k]
        held = refr > 0
        if held.any():
            v[held] = reset[held]
            refr[held] -= 1
        fired = np.flatnonzero(v >= theta)
        if fired.size:
            spikes_k.append(np.full(fired.size, k))
            spikes_j.append(fired)
            v[fired] = reset[fired]
            refr[fired] = n_refr
    ks = np.concatenate(spikes_k) if spikes_k else np.zeros(0, int)
    js = np.concatenate(spikes_j) if spikes_j else np.zeros(0, int)
    times = (k0 + ks + 1) * step  # spike at the end of the step that crossed
    return [clip_to_window(times[js == j], window_s) for j in range(theta.size)]


def threshold_reset_grid(m: Membrane, train: TrainingData, settings: LIFSettings) -> np.ndarray:
    """(theta, reset) pairs in mV, reset below theta: ``n_thresholds`` thresholds from E_L + 2 mV to
    10 mV above the 99.5th voltage percentile, resets at ``reset_offsets_mV`` from E_L."""
    factor = samples_per_step(train.dt_s, settings.model_step_s)
    v_all = np.concatenate([block_mean(s.voltage_mV, factor).ravel() for s in train.stimuli])
    e = m.e_leak_mV
    thetas = np.linspace(e + 2.0, np.percentile(v_all, 99.5) + 10.0, settings.n_thresholds)
    resets = e + np.array(settings.reset_offsets_mV)
    return np.array([(t, r) for t in thetas for r in resets if r < t])


def _stimulus_scores(m: Membrane, held: HeldOutStimulus, grid: np.ndarray, delta_s: float, budget: float,
                     settings: LIFSettings) -> list:
    """Scores of every (pair, latency) on one held-out stimulus (pair-major). ``budget < 1`` scores
    the first part of its window only (at least 5 s)."""
    s = held.stimulus
    start = s.window_s[0]
    stop = min(s.window_s[1], start + max(5.0, budget * (s.window_s[1] - start)))
    lead = max(settings.latencies_s)
    crossings = simulate(m, s.current_pA, s.dt_s, grid[:, 0], grid[:, 1], (start - lead, stop), settings)
    rec = [clip_to_window(t, (start, stop)) for t in held.spike_times_s]
    r = stretch_reliability(held.spike_times_s, (start, stop), delta_s)
    return [score_trains(s.name, rec, clip_to_window(train_s + latency, (start, stop)), (start, stop), delta_s,
                         reliability=r)
            for train_s in crossings for latency in settings.latencies_s]


def search_grid(m: Membrane, grid: np.ndarray, heldout: Sequence[HeldOutStimulus], delta_s: float, budget: float,
                settings: LIFSettings) -> list[Candidate]:
    """Every (theta, reset, latency) of the grid with its score on ``heldout`` and objective
    (Gamma/R minus the count penalty), pair-major; one simulation per pair and stimulus."""
    per_stimulus = [_stimulus_scores(m, h, grid, delta_s, budget, settings) for h in heldout]
    penalty = CountPenalty(settings.count_penalty, settings.count_error_stimuli)
    candidates = []
    for j in range(len(per_stimulus[0])):
        score = ValidationScore(tuple(stim[j] for stim in per_stimulus))
        pair, k = divmod(j, len(settings.latencies_s))
        (theta, reset), latency = grid[pair], settings.latencies_s[k]
        choice = {"threshold_mV": float(theta), "reset_mV": float(reset), "latency_s": float(latency)}
        candidates.append(Candidate(choice, score, penalty.objective(score)))
    return candidates


def search_data(train: TrainingData, heldout_fraction: float
                ) -> tuple[TrainingData, tuple[HeldOutStimulus, ...], str | None]:
    """What the search fits on, what scores it and the split's label: the first part of each window and the
    held-out rest (``train.time_split``), or, for a window too short to split, the whole window twice (label None)."""
    try:
        fold = train.time_split(heldout_fraction)
    except ValueError:
        whole = tuple(HeldOutStimulus(Stimulus(s.name, s.dt_s, s.current_pA, s.window_s, s.n_repetitions),
                                      s.spike_times_s, s.voltage_mV) for s in train.stimuli)
        return train, whole, None
    return fold.fit, fold.heldout, fold.label


class LeakyIntegrateAndFire(Model):
    """LIF neuron; deterministic (one train for all repetitions)."""

    name = "lif"
    description = ("leaky integrate-and-fire, membrane by least squares, threshold/reset/latency by Gamma/R "
                   "with a count penalty")
    Settings = LIFSettings
    variant = "refit"
    typical_fit_s = 6  # s at budget 1, one core, on the embedded cell: orders a run's jobs
    param_grid = {"count_penalty": [0.0, 0.1, 0.3, 1.0]}

    def fit(self, train: TrainingData) -> dict:
        """Membrane on the first part of each window, threshold, reset and latency chosen on the rest, the
        membrane refit on the whole window; the fit record."""
        s = self.settings
        fit_part, heldout, split = search_data(train, s.heldout_fraction)
        searched = fit_membrane(fit_part, s)
        grid = threshold_reset_grid(searched, fit_part, s)
        candidates = search_grid(searched, grid, heldout, train.delta_s, self.budget, s)
        best = best_candidate(candidates)
        self.membrane = m = fit_membrane(train, s)
        shift = m.e_leak_mV - searched.e_leak_mV  # threshold and reset stay where the grid put them: relative to E_L
        self.theta_mV, self.reset_mV = best.choice["threshold_mV"] + shift, best.choice["reset_mV"] + shift
        self.latency_s = best.choice["latency_s"]
        top = sorted(candidates, key=lambda c: -c.objective)[:RECORDED_CANDIDATES]
        return fit_record(
            settings=settings_record(s),
            fitted={"tau_m_ms": m.tau_m_s * 1e3, "e_leak_mV": m.e_leak_mV,
                    "capacitance_pF": 1e3 / m.gain_mV_per_s_per_pA, "threshold_mV": self.theta_mV,
                    "reset_mV": self.reset_mV, "latency_ms": self.latency_s * 1e3},
            held_out=None if split is None else held_out_record(best.score, split), candidates=candidates_record(top),
            details={"model_step_ms": 1e3 * train.dt_s * samples_per_step(train.dt_s, s.model_step_s),
                     "candidates": f"the {len(top)} best of {len(candidates)} grid points, scored on "
                                   + ("the held-out part" if split else "the training window (too short to split)"),
                     "searched_membrane": {"tau_m_ms": searched.tau_m_s * 1e3, "e_leak_mV": searched.e_leak_mV}})

    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) inside ``stimulus.window_s``: threshold crossings plus the fitted latency."""
        start, stop = stimulus.window_s
        crossings = simulate(self.membrane, stimulus.current_pA, stimulus.dt_s, np.array([self.theta_mV]),
                             np.array([self.reset_mV]), (start - self.latency_s, stop - self.latency_s),
                             self.settings)[0]
        return crossings + self.latency_s
