"""The MAT model as a qsnmc entry: fit on the training window, predict spike times.

Kobayashi, Tsubo & Shinomoto (2009), Frontiers in Computational Neuroscience 3:9.

Fit (training window only), in named steps of :meth:`MATModel.fit`:
1. ``train.time_split(heldout_fraction)``: each stimulus' window is split into a fit part
   (first 80 %) and a held-out part (last 20 %).
2. Membrane: the published leaky integrator ``V = E + R (k_tau * I)`` (unit-area
   exponential kernel ``k_tau``). For each candidate ``tau_m`` of ``membrane_taus_s``, ``E``
   and ``R`` are fitted by linear least squares on the subthreshold voltage of the fit part
   (:mod:`qsnmc_plugins.mat.membrane`).
3. For each kernel count (``n_kernels``; "auto": 2 and 3): ``tau_m`` (among the candidates),
   the threshold ``omega``, the signed jumps ``alpha_k`` and time constants ``tau_k`` of the
   threshold kernels (searched in ``threshold_tau_bounds_s``; the published MAT fixes 2 at
   10 and 200 ms with jumps >= 0), and the spike latency, by differential evolution on the fit
   part (objective: :class:`~qsnmc_plugins.mat.fitting.MATObjective`); 2 ms absolute refractory
   period. Each count is a :class:`qsnmc.Candidate` scored on the held-out part.
4. The candidate of highest held-out objective is kept as fitted (no refit: the held-out
   score in the fit record is that of the model that predicts). The defaults were chosen on
   held-out training data (benchmarks/README.md, "MAT").

Prediction: the model runs from protocol time 0 (from rest at the first current
sample) to the end of the window, so a test window that continues a training
recording (2009 style) is warmed up on the same current, and a new stimulus (2007
style) starts from rest; spikes inside the window are returned.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from qsnmc import (Candidate, CountPenalty, Model, SearchProgress, Stimulus, TrainingData, best_candidate, block_max,
                   candidates_record, clip_to_window, curve, fit_record, held_out_record, samples_per_step,
                   settings_record)

from qsnmc_plugins.mat.fitting import MATObjective, Segment, ThresholdParams, search_threshold, spike_times
from qsnmc_plugins.mat.membrane import MembraneFilter, fit_membrane
from qsnmc_plugins.mat.settings import MATSettings


class MATModel(Model):
    """Multi-timescale adaptive threshold neuron; deterministic (one train for all repetitions)."""

    name = "mat"
    description = ("multi-timescale adaptive threshold (Kobayashi 2009): leaky membrane by least squares, "
                   "signed threshold kernels with fitted time constants by Gamma/R with a count penalty")
    Settings = MATSettings
    variant = "no refit: the searched model predicts"
    typical_fit_s = 39  # s at budget 1, one core, on the embedded cell: orders a run's jobs
    param_grid = {"count_penalty": [0.0, 0.1, 0.3, 1.0], "n_kernels": ["auto", 2, 3]}

    def __init__(self, seed: int = 0, budget: float = 1.0, **overrides: Any) -> None:
        super().__init__(seed, budget, **overrides)
        self.membrane: MembraneFilter | None = None
        self.params: ThresholdParams | None = None

    @property
    def kernel_choices(self) -> tuple[int, ...]:
        """The kernel counts the fit tries."""
        s = self.settings
        return tuple(s.auto_kernels) if s.n_kernels == "auto" else (int(s.n_kernels),)

    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Membranes on the fit part, a threshold search per kernel count, the best on the held-out
        part kept; returns the fit record."""
        s = self.settings
        fold = train.time_split(s.heldout_fraction)
        factor = samples_per_step(train.dt_s, s.model_step_s)
        step = train.dt_s * factor
        membranes = [fit_membrane(fold.fit.stimuli, (tau,), s.membrane_cut_s) for tau in s.membrane_taus_s]
        potentials = [[block_max(m.potential(st.current_pA[: st.window_slice.stop], train.dt_s), factor)
                       for st in train.stimuli] for m in membranes]
        fit_part = [Segment(i, st.name, st.window_s, [clip_to_window(t, st.window_s) for t in st.spike_times_s])
                    for i, st in enumerate(fold.fit.stimuli)]
        held_out = [Segment(i, h.name, h.stimulus.window_s,
                            [clip_to_window(t, h.stimulus.window_s) for t in h.spike_times_s])
                    for i, h in enumerate(fold.heldout)]
        objective = MATObjective(potentials, step, train.delta_s,
                                 CountPenalty(s.count_penalty, s.count_error_stimuli), s.refractory_s)
        windows = [st.window_s for st in train.stimuli]
        candidates = [self._search(objective, fit_part, held_out, self._bounds(potentials, windows, step, k), k)
                      for k in self.kernel_choices]
        chosen = best_candidate(candidates)
        params = chosen.extra["params"]
        self.params = replace(params, membrane=min(params.membrane, len(membranes) - 1))
        self.membrane = membranes[self.params.membrane]
        return self._record(fold.label, candidates, chosen, membranes, objective, fit_part, step)

    def _search(self, objective: MATObjective, fit_part: list[Segment], held_out: list[Segment],
                bounds: list[tuple[float, float]], n_kernels: int) -> Candidate:
        """The threshold search with ``n_kernels`` kernels on the fit part, scored on the held-out part."""
        generations = max(2, int(round(self.settings.generations * self.budget)))
        with SearchProgress(generations, f"mat: threshold search, {n_kernels} kernels") as progress:
            params, _, history = search_threshold(objective, fit_part, bounds, n_kernels, generations=generations,
                                                  popsize=self.settings.popsize, seed=self.seed, progress=progress)
        score = objective.score(params, held_out)
        return Candidate({"n_kernels": n_kernels}, score, objective.penalty.objective(score),
                         {"params": params, "history": history, "bounds": bounds})

    def _record(self, split: str, candidates: list[Candidate], chosen: Candidate, membranes: list[MembraneFilter],
                objective: MATObjective, fit_part: list[Segment], step: float) -> dict[str, Any]:
        """The fit record: fitted parameters with units, the held-out choice, the search's curve."""
        p, m, history = self.params, self.membrane, chosen.extra["history"]
        fitted = {"tau_m_ms": 1e3 * m.taus_s[0], "resistance_MOhm": m.input_resistance_MOhm, "rest_mV": m.offset_mV,
                  "subthreshold_rmse_mV": m.rmse_mV, "omega_mV": p.omega_mV, "alphas_mV": list(p.alphas_mV),
                  "threshold_taus_ms": [1e3 * t for t in p.taus_s], "latency_ms": 1e3 * p.latency_s,
                  "n_kernels": len(p.alphas_mV), "refractory_ms": 1e3 * self.settings.refractory_s,
                  "model_step_ms": 1e3 * step}
        fit_score = objective.score(p, fit_part)
        details = {"candidate_tau_m_ms": [1e3 * mf.taus_s[0] for mf in membranes],
                   "candidate_rmse_mV": [mf.rmse_mV for mf in membranes],
                   "fit_part_s": [list(seg.window_s) for seg in fit_part],
                   "fit_part_performance": fit_score.performance, "fit_part_per_stimulus": fit_score.per_stimulus(),
                   "search": {"method": "scipy.optimize.differential_evolution", "generations": len(history),
                              "population": self.settings.popsize * len(chosen.extra["bounds"]),
                              "evaluations": objective.n_evaluations,
                              "bounds": self._bounds_record(chosen.extra["bounds"]),
                              "at_a_bound": self._at_bounds(chosen.extra["bounds"])}}
        return fit_record(settings=settings_record(self.settings), fitted=fitted,
                          held_out=held_out_record(chosen.score, split),
                          candidates=candidates_record([Candidate(c.choice, c.score, c.objective) for c in candidates]),
                          curves={"best_objective": curve(range(1, len(history) + 1), history, "generation",
                                                          "best objective on the fit part")},
                          details=details)

    def _bounds(self, potentials: Sequence[Sequence[np.ndarray]], windows_s: list[tuple[float, float]],
                step_s: float, n_kernels: int) -> list[tuple[float, float]]:
        """Search ranges; omega and alpha scaled by the candidate potentials in the training windows (mV)."""
        lo, hi, spread = [], [], []
        for per_stim in potentials:
            v = np.concatenate([p[int(w0 / step_s) : int(w1 / step_s)] for p, (w0, w1) in zip(per_stim, windows_s)])
            lo.append(np.percentile(v, 10.0))
            hi.append(v.max())
            spread.append(np.std(v))
        s = float(max(spread))
        k = n_kernels
        return [
            (0.0, len(potentials) - 1e-6),
            (float(min(lo)), float(max(hi))),
            *[(-2.0 * s, 10.0 * s)] * k,
            *[(float(np.log10(a)), float(np.log10(b))) for a, b in self.settings.threshold_tau_bounds_s[:k]],
            tuple(self.settings.latency_bounds_ms),
        ]

    @staticmethod
    def _bounds_record(bounds: list[tuple[float, float]]) -> dict[str, list[float]]:
        """The search ranges with units: jumps as the first alpha or a slower kernel's rise at 10 Hz."""
        k = (len(bounds) - 3) // 2
        return {"membrane_index": list(bounds[0]), "omega_mV": list(bounds[1]),
                **{(f"alpha{j + 1}_mV" if j == 0 else f"rise{j + 1}_at_10Hz_mV"): list(b)
                   for j, b in enumerate(bounds[2 : 2 + k])},
                **{f"tau{j + 1}_ms": [1e3 * 10.0**b[0], 1e3 * 10.0**b[1]] for j, b in enumerate(bounds[2 + k : -1])},
                "latency_ms": list(bounds[-1])}

    def _at_bounds(self, bounds: list[tuple[float, float]]) -> list[str]:
        """The fitted parameters within 1 % of the range of a search bound (the optimum may lie beyond)."""
        p = self.params
        k = len(p.alphas_mV)
        x = [p.omega_mV, *[a if j == 0 else a * 10.0 * t for j, (a, t) in enumerate(zip(p.alphas_mV, p.taus_s))],
             *np.log10(p.taus_s), 1e3 * p.latency_s]
        names = ["omega_mV", *[f"jump{j + 1}" for j in range(k)], *[f"tau{j + 1}" for j in range(k)], "latency_ms"]
        return [name for name, v, (lo, hi) in zip(names, x, bounds[1:])
                if v <= lo + 0.01 * (hi - lo) or v >= hi - 0.01 * (hi - lo)]

    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s, absolute protocol time) inside ``stimulus.window_s``."""
        if self.membrane is None or self.params is None:
            raise RuntimeError("fit the model before predicting")
        n = min(stimulus.current_pA.size, int(np.ceil(stimulus.window_s[1] / stimulus.dt_s)) + 1)
        factor = samples_per_step(stimulus.dt_s, self.settings.model_step_s)
        v = block_max(self.membrane.potential(stimulus.current_pA[:n], stimulus.dt_s), factor)
        return clip_to_window(spike_times(v, stimulus.dt_s * factor, self.params, self.settings.refractory_s),
                              stimulus.window_s)
