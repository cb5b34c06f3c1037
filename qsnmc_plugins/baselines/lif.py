"""Leaky integrate-and-fire baseline with a fitted membrane and a fitted threshold.

Fit, on the training window only:
1. Membrane: ``dV/dt = (E_L - V) / tau_m + I / C`` by linear least squares on the
   subthreshold voltage (bins of the model step, spikes and their after-potential cut out).
2. Threshold ``theta`` and reset ``V_r`` on a grid, scored the competition's way against
   every training repetition (:class:`qsnmc.ValidationScore`: Gamma/R per stimulus, stimuli
   weighted equally, stimuli whose training R is under 0.3 left out, since on a barely
   reliable stimulus Gamma measures little beyond the rate), minus ``count_penalty`` times
   the mean |log| ratio of predicted to recorded spike counts, so that a threshold that
   fits one stimulus by firing far too often on another loses. A 2 ms absolute
   refractory period.
3. A latency (s) from the model's threshold crossing to the recorded spike, on a grid, chosen
   jointly with threshold and reset by the same objective: a recorded spike time marks the
   action potential's upstroke, a few ms after the voltage leaves the subthreshold range
   that the LIF's threshold stands for.

The fit record also scores the same fit on held-out training data (fitted on the first 75 %
of each window, scored on the rest) per stimulus: Gamma/R and predicted / recorded counts.
"""
from __future__ import annotations

import numpy as np

from qsnmc import Model, Stimulus, TrainingData, TrainingStimulus, ValidationScore
from qsnmc import intrinsic_reliability, score_trains, validate_model

HELDOUT_FRACTION = 0.25  #: share of each training window held out for the fit record's validation
MODEL_STEP_S = 0.0005  #: simulation step (s): 8x finer than the 4 ms coincidence window
REFRACTORY_S = 0.002
CUT_BEFORE_S, CUT_AFTER_S = 0.003, 0.025  #: voltage excluded around each spike for the membrane fit
N_THRESHOLDS = 32  #: threshold grid size
RESET_OFFSETS_MV = (-15.0, -10.0, -5.0, 0.0, 5.0, 10.0)  #: reset grid, relative to E_L (mV)
#: latency grid (s): predicted spikes are the threshold crossings moved later by this
LATENCIES_S = (0.0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006)
#: default weight of the spike-count error in the threshold objective (chosen on held-out training data:
#: benchmarks/README.md, "LIF: the threshold objective and its count penalty")
COUNT_PENALTY = 0.1


def training_reliability(s: TrainingStimulus, delta_s: float, stop_s: float) -> float:
    """R of a training stimulus' repetitions up to ``stop_s`` (NaN with fewer than 2)."""
    if s.n_repetitions < 2:
        return float("nan")
    return intrinsic_reliability([t[t < stop_s] for t in s.spike_times_s], delta_s, duration=stop_s - s.window_s[0])


def _bin(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean over consecutive blocks of ``factor`` samples along the last axis (tail dropped)."""
    n = x.shape[-1] // factor * factor
    return x[..., :n].reshape(*x.shape[:-1], -1, factor).mean(axis=-1)


def _membrane_rows(s: TrainingStimulus, factor: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Regression rows ``[V, I, 1]`` and targets dV/dt (mV/s) of one training stimulus, on bins
    of ``step`` s, leaving out the voltage around each spike."""
    v = _bin(s.voltage_mV, factor)  # (reps, n_bins)
    i = _bin(s.window_current_pA, factor)
    keep = np.ones_like(v, dtype=bool)
    for r, spikes in enumerate(s.spike_times_s):
        k = ((spikes - s.window_s[0]) / step).astype(int)
        for off in range(-int(CUT_BEFORE_S / step), int(CUT_AFTER_S / step) + 1):
            keep[r, np.clip(k + off, 0, v.shape[1] - 1)] = False
    ok = keep[:, :-1] & keep[:, 1:]
    dv = (v[:, 1:] - v[:, :-1]) / step
    x = np.stack([v[:, :-1][ok], np.broadcast_to(i[:-1], v[:, :-1].shape)[ok], np.ones(ok.sum())], axis=1)
    return x, dv[ok]


class LeakyIntegrateAndFire(Model):
    """LIF neuron; deterministic (one train for all repetitions)."""

    name = "lif"
    description = "leaky integrate-and-fire, membrane by least squares, threshold/reset/latency by Gamma/R with a count penalty"
    param_grid = {"count_penalty": [0.0, 0.1, 0.3, 1.0]}

    def __init__(self, seed: int = 0, budget: float = 1.0, count_penalty: float = COUNT_PENALTY) -> None:
        super().__init__(seed, budget)
        self.count_penalty = float(count_penalty)
        #: whether ``fit`` also validates on a time split for its record (off inside that validation)
        self.record_heldout = True

    def _factor(self, dt_s: float) -> int:
        return max(1, int(round(MODEL_STEP_S / dt_s)))

    def fit(self, train: TrainingData) -> dict:
        """Fit the membrane by least squares, then threshold, reset and latency on a grid by Gamma."""
        factor = self._factor(train.dt_s)
        step = train.dt_s * factor
        self._fit_membrane(train, factor, step)
        grid = self._threshold_reset_grid(train, factor)
        scores = self._grid_scores(train, grid)
        objective = np.array([v.performance - self.count_penalty * v.log_count_error for v in scores])
        best = int(np.argmax(objective))
        pair, latency = divmod(best, len(LATENCIES_S))
        (self.theta_mV, self.reset_mV), self.latency_s = grid[pair], LATENCIES_S[latency]
        return {
            "tau_m_ms": self.tau_m_s * 1e3,
            "e_leak_mV": self.e_leak_mV,
            "capacitance_pF": 1e3 / self.gain_mV_per_s_per_pA,
            "threshold_mV": float(self.theta_mV),
            "reset_mV": float(self.reset_mV),
            "refractory_ms": REFRACTORY_S * 1e3,
            "latency_ms": float(self.latency_s * 1e3),
            "model_step_ms": step * 1e3,
            "training_objective": float(objective[best]),
            "objective": "Gamma/R per training stimulus (R >= 0.3), equal weights, minus count_penalty x "
                         "mean |log count ratio|",
            "count_penalty": self.count_penalty,
            "training_score": scores[best].to_dict(),
            "training_per_stimulus": scores[best].per_stimulus(),
            **self._heldout_record(train),
        }

    def _heldout_record(self, train: TrainingData) -> dict:
        """The same fit on the first part of each window, scored on the rest, per stimulus."""
        if not self.record_heldout:
            return {}
        inner = LeakyIntegrateAndFire(self.seed, self.budget, self.count_penalty)
        inner.record_heldout = False
        try:
            fold = train.time_split(HELDOUT_FRACTION)
        except ValueError:  # a window too short to split
            return {}
        score = validate_model(inner, fold)
        return {"heldout_gamma_over_R": score.performance, "heldout_fraction": HELDOUT_FRACTION,
                "heldout_log_count_error": score.count_error(every_stimulus=True),
                "held_out_per_stimulus": score.per_stimulus()}

    def _fit_membrane(self, train: TrainingData, factor: int, step: float) -> None:
        """``dV/dt = a V + b I + c`` by least squares on the binned subthreshold voltage of every
        stimulus; sets tau_m, the gain 1 / C and E_L."""
        rows, targets = zip(*(_membrane_rows(s, factor, step) for s in train.stimuli))
        x = np.concatenate(rows)
        y = np.concatenate(targets)
        (a, b, c), *_ = np.linalg.lstsq(x, y, rcond=None)
        if a >= 0 or b <= 0:
            raise RuntimeError(f"membrane fit unphysical: dV/dt = {a:.3g} V + {b:.3g} I + {c:.3g}")
        self.tau_m_s = -1.0 / a
        self.gain_mV_per_s_per_pA = b  # = 1 / C, C in nF
        self.e_leak_mV = -c / a
        self.step_s = step

    def _threshold_reset_grid(self, train: TrainingData, factor: int) -> np.ndarray:
        """(theta, reset) pairs in mV, reset below theta: thresholds from E_L + 2 mV to 10 mV above
        the 99.5th voltage percentile, resets at :data:`RESET_OFFSETS_MV` from E_L."""
        v_all = np.concatenate([_bin(s.voltage_mV, factor).ravel() for s in train.stimuli])
        e = self.e_leak_mV
        thetas = np.linspace(e + 2.0, np.percentile(v_all, 99.5) + 10.0, N_THRESHOLDS)
        resets = e + np.array(RESET_OFFSETS_MV)
        return np.array([(t, r) for t in thetas for r in resets if r < t])

    def _grid_scores(self, train: TrainingData, grid: np.ndarray) -> list[ValidationScore]:
        """The score of each (theta, reset) pair at each latency of :data:`LATENCIES_S` (pair-major)
        against the training repetitions of every stimulus: one simulation per pair, each latency
        shifts its train."""
        per_stimulus = []
        for s in train.stimuli:
            # budget < 1 fits the threshold on the first part of the window only (at least 5 s)
            start = s.window_s[0]
            stop = min(s.window_s[1], start + max(5.0, self.budget * (s.window_s[1] - start)))
            crossings = self._simulate(s.current_pA, s.dt_s, grid[:, 0], grid[:, 1], start - max(LATENCIES_S), stop)
            rec = [t[t < stop] for t in s.spike_times_s]
            r = training_reliability(s, train.delta_s, stop)
            scores = []
            for train_s in crossings:
                for latency in LATENCIES_S:
                    pred = train_s + latency
                    pred = pred[(pred >= start) & (pred < stop)]
                    scores.append(score_trains(s.name, rec, pred, (start, stop), train.delta_s, reliability=r))
            per_stimulus.append(scores)
        return [ValidationScore(tuple(stim[j] for stim in per_stimulus)) for j in range(len(per_stimulus[0]))]

    def _simulate(
        self, current_pA: np.ndarray, dt_s: float, theta: np.ndarray, reset: np.ndarray, start_s: float, stop_s: float
    ) -> list[np.ndarray]:
        """Spike times (s) in [start_s, stop_s) for each (theta, reset) candidate, from rest 0.5 s before."""
        factor = self._factor(dt_s)
        step = dt_s * factor
        i = _bin(current_pA, factor)
        k0 = max(0, int((start_s - 0.5) / step))
        k1 = min(i.size, int(np.ceil(stop_s / step)))
        decay = np.exp(-step / self.tau_m_s)
        gain = (1.0 - decay) * self.tau_m_s * self.gain_mV_per_s_per_pA  # exact for piecewise-constant I
        drive = self.e_leak_mV * (1 - decay) + gain * i[k0:k1]
        v = np.full(theta.shape, self.e_leak_mV)
        refr = np.zeros(theta.shape, dtype=np.int64)
        n_refr = int(round(REFRACTORY_S / step))
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
        return [times[(js == j) & (times >= start_s) & (times < stop_s)] for j in range(theta.size)]

    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) inside ``stimulus.window_s``: threshold crossings plus the fitted latency."""
        start, stop = stimulus.window_s
        crossings = self._simulate(stimulus.current_pA, stimulus.dt_s, np.array([self.theta_mV]),
                                   np.array([self.reset_mV]), start - self.latency_s, stop - self.latency_s)[0]
        return crossings + self.latency_s
