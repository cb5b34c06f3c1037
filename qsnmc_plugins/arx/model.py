"""The ``arx`` model: an ARX model of the subthreshold voltage with a threshold spike rule.

Fit (training window only), in named steps:

1. Bin the recordings to the model step (``model_step_s``, block means) and cut the spikes
   out of the voltage (:mod:`spike_cut`); hold out the last ``heldout_fraction`` of each
   training window (``TrainingData.time_split``).
2. Orders (:func:`order_search.search_orders`): every structure of the grid is fitted by ridge
   least squares on the fit part and scored by its free-running voltage error on the held-out
   part; unstable fits are rejected. The best is refined by output-error (Steiglitz-McBride)
   iterations, their number chosen on the held-out part.
3. Spike rule (:mod:`spike_rule`: threshold, signed adaptive jump and its time constant,
   latency) fitted on the fit part by the competition's score minus ``count_penalty`` x the
   mean |ln| spike-count ratio over every stimulus, and scored on the held-out part: the
   held-out figures of the fit record, per stimulus.
4. Refit: the chosen structure on the whole window (stabilised, with a warning, should its
   poles leave the unit circle), the spike rule on the whole window.

Prediction free-runs the model over the protocol from its start, from the current
alone, and returns the spike times inside the requested window.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from qsnmc import (Candidate, Model, Stimulus, TrainingData, TrainingStimulus, ValidationScore, bar, best_candidate,
                   block_mean, candidates_record, curve, fit_record, held_out_record, samples_per_step,
                   settings_record)
from qsnmc_plugins.arx.free_run import spike_kernel
from qsnmc_plugins.arx.identification import ArxFilter, ArxOrders, GramAccumulator, Series
from qsnmc_plugins.arx.order_search import HeldOutSet, candidate_orders, held_out_rmse, search_orders
from qsnmc_plugins.arx.output_error import steiglitz_mcbride
from qsnmc_plugins.arx.settings import ArxSettings
from qsnmc_plugins.arx.spike_basis import spike_basis
from qsnmc_plugins.arx.spike_cut import CutVoltage, cut_spikes
from qsnmc_plugins.arx.spike_rule import SpikeRule, Target, fit_spike_rule, score_rule, spike_times
from qsnmc_plugins.arx.stability import pole_radius, stabilise


@dataclass
class PreparedStimulus:
    """One training stimulus at the model step."""

    source: TrainingStimulus
    current_pA: np.ndarray  #: binned current over the protocol
    start_bin: int  #: protocol bin of the window's first bin
    reps: list[CutVoltage]
    split_bin: int  #: window bin where the held-out part starts

    @property
    def n_bins(self) -> int:
        return self.reps[0].voltage_mV.size

    def series(self) -> list[Series]:
        return [Series(r.voltage_mV, self.current_pA, r.onsets + self.start_bin, self.start_bin) for r in self.reps]


def prepare(stim: TrainingStimulus, n_fit_samples: int, step_s: float, settings: ArxSettings) -> PreparedStimulus:
    """Bin one training stimulus and cut its spikes out; the first ``n_fit_samples`` recorded
    samples are the fit part (whole bins of it), the rest is held out."""
    f = samples_per_step(stim.dt_s, step_s)
    start_bin = int(round(stim.window_s[0] / step_s))
    v = block_mean(stim.voltage_mV, f)
    reps = [cut_spikes(v[r], stim.spike_times_s[r], step_s, stim.window_s[0], settings.cut_before_s,
                       settings.cut_after_s) for r in range(stim.n_repetitions)]
    return PreparedStimulus(stim, block_mean(stim.current_pA, f), start_bin, reps, n_fit_samples // f)


def _held_out_sets(prepared: list[PreparedStimulus]) -> list[HeldOutSet]:
    """Each stimulus' held-out part: the current up to the window's end, spike onsets, and the
    recorded voltage with its spike-free mask from the split on."""
    return [HeldOutSet(p.current_pA[: p.start_bin + p.n_bins], [r.onsets + p.start_bin for r in p.reps],
                       np.array([r.voltage_mV[p.split_bin :] for r in p.reps]),
                       ~np.array([r.cut[p.split_bin :] for r in p.reps]), p.start_bin + p.split_bin)
            for p in prepared]


def _gram(prepared: list[PreparedStimulus], basis: np.ndarray, settings: ArxSettings, part: str) -> GramAccumulator:
    """Normal equations of the largest structure on the ``"fit"`` or ``"held"`` part of every repetition."""
    v_ref = float(np.mean([r.voltage_mV.mean() for p in prepared for r in p.reps]))
    i_ref = float(np.mean([p.current_pA[p.start_bin : p.start_bin + p.n_bins].mean() for p in prepared]))
    gram = GramAccumulator(max(settings.voltage_orders), max(settings.current_orders), basis, v_ref, i_ref)
    for p in prepared:
        rows = {"fit": slice(0, p.split_bin), "held": slice(p.split_bin, p.n_bins)}[part]
        for s in p.series():
            gram.add(s, rows)
    return gram


def _targets(prepared: list[PreparedStimulus], step_s: float, part: str, min_fit_s: float,
             budget: float) -> list[Target]:
    """Recorded spikes of the ``"fit"`` part, the ``"held"`` part, ``"all"`` of the window (both
    shortened at a small budget to ``max(min_fit_s, budget x length)``) or the ``"whole"`` window."""
    out = []
    for p in prepared:
        w0, w1 = p.source.window_s
        split = w0 + p.split_bin * step_s  # where the held-out part starts (s)
        start, stop = {"fit": (w0, split), "held": (split, w1)}.get(part, (w0, w1))
        if part in ("fit", "all"):  # a small budget fits the spike rule on a shorter stretch
            stop = min(stop, start + max(min_fit_s, budget * (stop - start)))
        spikes = [np.asarray(t) for t in p.source.spike_times_s]
        out.append(Target(p.current_pA, spikes, w0, w1, p.source.name).clipped(start, stop))
    return out


@dataclass
class StructureSearch:
    """What the structure search chose on the held-out part (nothing of the model is touched)."""

    candidates: list[Candidate]  #: every stable order candidate, in search order
    n_unstable: int  #: candidates rejected as unstable
    orders: ArxOrders  #: the chosen orders
    fit_filter: ArxFilter  #: the chosen orders fitted on the fit part, with output-error refinement
    rmse_history: list[float]  #: held-out RMSE (mV) by output-error iteration (0: plain ARX)
    n_output_error: int  #: output-error iterations chosen
    gram_fit: GramAccumulator  #: normal equations of the fit part


def search_structure(prepared: list[PreparedStimulus], basis: np.ndarray, grid: list[ArxOrders], step_s: float,
                     settings: ArxSettings, progress) -> StructureSearch:
    """Choose the orders among ``grid``, then the output-error iterations, by the held-out free-running
    voltage error."""
    gram_fit = _gram(prepared, basis, settings, "fit")
    held = _held_out_sets(prepared)
    candidates, n_unstable = search_orders(gram_fit, held, grid, step_s, settings, progress)
    orders = ArxOrders(**best_candidate(candidates).choice)
    fit_parts = [(s, slice(0, p.split_bin)) for p in prepared for s in p.series()]
    score = partial(held_out_rmse, held=held, max_reps=settings.max_validation_reps)
    filt, history = steiglitz_mcbride(gram_fit.solve(orders, step_s), gram_fit, fit_parts, score,
                                      settings.output_error_iterations, settings.max_pole_radius)
    progress.update(1)
    return StructureSearch(candidates, n_unstable, orders, filt, history, int(np.nanargmin(history)), gram_fit)


def whole_window_filter(prepared: list[PreparedStimulus], basis: np.ndarray, search: StructureSearch,
                        step_s: float, settings: ArxSettings) -> tuple[ArxFilter, str]:
    """The chosen orders refitted on the whole window (fit part's normal equations plus the
    held-out part's), with the chosen output-error iterations, stabilised if needed.

    Returns the filter and the stabilisation message ("" when it was stable).
    """
    gram_fit = search.gram_fit
    gram_all = _gram(prepared, basis, settings, "held")
    gram_all.gram += gram_fit.gram
    gram_all.xty += gram_fit.xty
    gram_all.yty += gram_fit.yty
    gram_all.n_rows += gram_fit.n_rows
    filt = gram_all.solve(search.orders, step_s)
    if search.n_output_error:
        all_parts = [(s, slice(0, p.n_bins)) for p in prepared for s in p.series()]
        filt, _ = steiglitz_mcbride(filt, gram_all, all_parts, None, search.n_output_error, settings.max_pole_radius)
    a_new, message = stabilise(filt.a, settings.max_pole_radius)
    if message:
        warnings.warn(f"arx: {message}", RuntimeWarning, stacklevel=3)
        filt.a = a_new
    return filt, message


class ArxModel(Model):
    """ARX voltage model + adaptive threshold; deterministic (one train for every repetition)."""

    name = "arx"
    description = ("ARX model of the subthreshold voltage (ridge least squares, orders by validation) + adaptive "
                   "threshold by Gamma/R with a count penalty")
    Settings = ArxSettings
    variant = "refit"
    typical_fit_s = 13  # s at budget 1, one core, on the embedded cell: orders a run's jobs
    param_grid = {"count_penalty": [0.0, 0.1, 0.3, 1.0]}

    def __init__(self, seed: int = 0, budget: float = 1.0, **overrides: Any) -> None:
        super().__init__(seed, budget, **overrides)
        self.filter: ArxFilter | None = None
        self.rule: SpikeRule | None = None

    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Choose the orders and output-error iterations on the held-out part, fit the spike rule,
        refit both on the whole window; return the fit record."""
        s = self.settings
        step = s.model_step_s if train.dt_s <= s.model_step_s else train.dt_s
        fold = train.time_split(s.heldout_fraction)
        prepared = [prepare(st, ft.voltage_mV.shape[1], step, s) for st, ft in zip(train.stimuli, fold.fit.stimuli)]
        basis = spike_basis(step, s)
        targets = partial(_targets, prepared, step, min_fit_s=s.min_rule_fit_s, budget=self.budget)
        rule_fit = partial(fit_spike_rule, delta_s=train.delta_s, settings=s, budget=self.budget, seed=self.seed)
        grid = candidate_orders(step, s, self.budget)
        with bar(len(grid) + 5, desc="arx fit") as progress:
            search = search_structure(prepared, basis, grid, step, s, progress)
            progress.set_postfix(rmse_mV=f"{search.rmse_history[search.n_output_error]:.2f}")
            rule_on_fit, _ = rule_fit(search.fit_filter, targets("fit"), progress=progress)
            held = score_rule(search.fit_filter, rule_on_fit, targets("held"), train.delta_s)
            progress.set_postfix(held_gamma_over_R=f"{held.performance:.3f}")
            self.filter, message = whole_window_filter(prepared, basis, search, step, s)
            self.rule, rule_search = rule_fit(self.filter, targets("all"), progress=progress)
            whole = score_rule(self.filter, self.rule, targets("whole"), train.delta_s)
        details = {"stability": {"rejected_unstable_candidates": search.n_unstable,
                                 "final_fit_stabilised": bool(message), "message": message},
                   "spike_rule_fit_part": rule_on_fit.to_record(), "spike_rule_search": rule_search,
                   "validation": _validation(search, held, whole)}
        return fit_record(settings=settings_record(s), fitted=self._fitted(step), held_out=held_out_record(held,
                          fold.label), candidates=candidates_record(search.candidates), details=details,
                          curves={"held_out_rmse": curve(range(len(search.rmse_history)), search.rmse_history,
                                                         "output-error iteration", "held-out RMSE (mV)")})

    def _fitted(self, step: float) -> dict[str, Any]:
        """The fitted filter and spike rule, units in the names."""
        filt, orders = self.filter, self.filter.orders
        g = spike_kernel(filt)
        a_poly_gain = 1.0 - float(np.sum(filt.a))
        big = np.flatnonzero(np.abs(filt.c) > 1e-9)
        return {
            "model_step_ms": step * 1e3,
            "n_voltage_lags": orders.n_voltage, "n_current_lags": orders.n_current,
            "n_spike_basis": orders.n_spike, "ridge": orders.ridge,
            "spike_history_span_ms": float(big[-1] + 1) * step * 1e3 if big.size else 0.0,
            "a": filt.a.tolist(), "b_mV_per_pA": filt.b.tolist(),
            "dc_gain_mV_per_pA": float(np.sum(filt.b) / a_poly_gain),
            "resting_voltage_mV": filt.v_ref_mV + (filt.d - float(np.sum(filt.b)) * filt.i_ref_pA) / a_poly_gain,
            "pole_radius": pole_radius(filt.a),
            "slowest_time_constant_ms": float(-step * 1e3 / np.log(max(pole_radius(filt.a), 1e-12))),
            "spike_kernel_min_mV": float(g.min()) if g.size else 0.0,
            "spike_kernel_at_10_50_200_ms_mV": [float(g[k - 1]) if g.size >= k else 0.0 for k in
                                                (int(0.01 / step), int(0.05 / step), int(0.2 / step))],
            "spike_kernel_length_ms": g.size * step * 1e3,
            "spike_rule": self.rule.to_record(),
        }

    def predict(self, stimulus: Stimulus) -> np.ndarray:
        """Spike times (s) in ``stimulus.window_s``, free-running from the protocol's start."""
        current = block_mean(stimulus.current_pA, samples_per_step(stimulus.dt_s, self.filter.step_s))
        t = spike_times(self.filter, self.rule, current, *stimulus.window_s)
        keep = np.concatenate([[True], np.diff(t) > 0]) if t.size else np.zeros(0, bool)
        return t[keep]


def _validation(search: StructureSearch, held: ValidationScore, whole: ValidationScore) -> dict[str, Any]:
    """Voltage errors of the chosen structure, and the spike rule's Gamma on held-out and whole windows."""
    chosen = best_candidate(search.candidates)
    return {
        "held_out_rmse_mV": float(search.rmse_history[search.n_output_error]),
        "held_out_rmse_mV_arx": float(search.rmse_history[0]),
        "output_error_iterations": search.n_output_error,
        "held_out_one_step_rmse_mV_arx": chosen.extra["one_step_rmse_mV"],
        "held_out_gamma": float(np.mean([h.gamma for h in held.stimuli])),
        "training_gamma": float(np.mean([h.gamma for h in whole.stimuli])),
        "training_gamma_over_R": whole.performance,
        "training_per_stimulus": whole.per_stimulus(),
    }
