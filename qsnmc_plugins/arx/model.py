"""The ``arx`` model: an ARX model of the subthreshold voltage with a threshold spike rule.

Fit (training window only):

1. Bin the recordings to 1 ms (:mod:`binning`), cut the spikes out of the voltage
   (:mod:`spike_cut`).
2. Orders: every structure of :func:`order_search.candidate_orders` is fitted by
   ridge least squares on the first :data:`FIT_FRACTION` of the window and scored by
   its free-running voltage error on the rest (the held-out part); unstable fits
   are rejected.
3. Spike rule (:mod:`spike_rule`: threshold, signed adaptive jump and its time constant,
   latency) fitted on the fit part by the competition's score minus ``count_penalty`` x the
   mean |ln| spike-count ratio, and scored on the held-out part: the held-out figures of the
   fit record, per stimulus.
4. Final model: the chosen structure refitted on the whole window (stabilised, with
   a warning, should its poles leave the unit circle), spike rule refitted on the
   whole window.

Prediction free-runs the model over the protocol from its start, from the current
alone, and returns the spike times inside the requested window.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from qsnmc import Stimulus, TrainingData, TrainingStimulus
from qsnmc import Model
from qsnmc import bar
from qsnmc_plugins.arx.binning import MODEL_STEP_S, bin_factor, block_mean
from qsnmc_plugins.arx.free_run import spike_kernel
from qsnmc_plugins.arx.identification import ArxFilter, GramAccumulator, Series
from qsnmc_plugins.arx.order_search import (
    CURRENT_ORDERS,
    VOLTAGE_ORDERS,
    HeldOutSet,
    candidate_orders,
    candidate_record,
    held_out_rmse,
    search_orders,
)
from qsnmc_plugins.arx.output_error import steiglitz_mcbride
from qsnmc_plugins.arx.spike_basis import N_COSINES, n_fine_lags, spike_basis
from qsnmc_plugins.arx.spike_cut import CutVoltage, cut_spikes
from qsnmc_plugins.arx.spike_rule import SpikeRule, Target, fit_spike_rule, score_rule, spike_times
from qsnmc_plugins.arx.stability import pole_radius, stabilise

FIT_FRACTION = 0.8  #: share of each training window used to fit; the rest is held out
REDUCED_SEARCH_BELOW = 0.5  #: a budget below this searches a reduced grid of orders
MIN_RULE_FIT_S = 5.0  #: shortest stretch of training the spike rule is fitted on at a small budget (s)
#: default weight of the spike-count error in the spike rule's objective (benchmarks/README.md, "ARX")
COUNT_PENALTY = 1.0


@dataclass
class PreparedStimulus:
    """One training stimulus at the model step."""

    source: TrainingStimulus
    current_pA: np.ndarray  #: binned current over the protocol
    start_bin: int  #: protocol bin of the window's first bin
    reps: list[CutVoltage]

    @property
    def n_bins(self) -> int:
        return self.reps[0].voltage_mV.size

    def series(self) -> list[Series]:
        return [Series(r.voltage_mV, self.current_pA, r.onsets + self.start_bin, self.start_bin) for r in self.reps]

    def split_bin(self) -> int:
        """Window bin where the held-out part starts."""
        return int(FIT_FRACTION * self.n_bins)

    def split_s(self, step_s: float) -> float:
        return self.source.window_s[0] + self.split_bin() * step_s


def prepare(stim: TrainingStimulus, step_s: float) -> PreparedStimulus:
    """Bin one training stimulus and cut its spikes out."""
    f = bin_factor(stim.dt_s, step_s)
    start_bin = int(round(stim.window_s[0] / step_s))
    v = block_mean(stim.voltage_mV, f)
    reps = [cut_spikes(v[r], stim.spike_times_s[r], step_s, stim.window_s[0]) for r in range(stim.n_repetitions)]
    return PreparedStimulus(stim, block_mean(stim.current_pA, f), start_bin, reps)


def _held_out_sets(prepared: list[PreparedStimulus]) -> list[HeldOutSet]:
    """Each stimulus' held-out part: the current up to the window's end, spike onsets, and the
    recorded voltage with its spike-free mask from the split on."""
    return [
        HeldOutSet(
            p.current_pA[: p.start_bin + p.n_bins],
            [r.onsets + p.start_bin for r in p.reps],
            np.array([r.voltage_mV[p.split_bin() :] for r in p.reps]),
            ~np.array([r.cut[p.split_bin() :] for r in p.reps]),
            p.start_bin + p.split_bin(),
        )
        for p in prepared
    ]


class ArxModel(Model):
    """ARX voltage model + adaptive threshold; deterministic (one train for every repetition)."""

    name = "arx"
    description = ("ARX model of the subthreshold voltage (ridge least squares, orders by validation) + adaptive "
                   "threshold by Gamma/R with a count penalty")
    param_grid = {"count_penalty": [0.0, 0.1, 0.3, 1.0]}

    def __init__(self, seed: int = 0, budget: float = 1.0, count_penalty: float = COUNT_PENALTY) -> None:
        super().__init__(seed, budget)
        self.count_penalty = float(count_penalty)
        self.filter: ArxFilter | None = None
        self.rule: SpikeRule | None = None

    # -- fitting ---------------------------------------------------------------------
    def _gram(self, prepared: list[PreparedStimulus], basis: np.ndarray, part: str) -> GramAccumulator:
        v_ref = float(np.mean([r.voltage_mV.mean() for p in prepared for r in p.reps]))
        i_ref = float(np.mean([p.current_pA[p.start_bin : p.start_bin + p.n_bins].mean() for p in prepared]))
        gram = GramAccumulator(max(VOLTAGE_ORDERS), max(CURRENT_ORDERS), basis, v_ref, i_ref)
        for p in prepared:
            rows = {"fit": slice(0, p.split_bin()), "held": slice(p.split_bin(), p.n_bins)}[part]
            for s in p.series():
                gram.add(s, rows)
        return gram

    def _targets(self, prepared: list[PreparedStimulus], step_s: float, part: str) -> list[Target]:
        out = []
        for p in prepared:
            w0, w1 = p.source.window_s
            split = p.split_s(step_s)
            if part == "fit":
                start, stop = w0, split
            elif part == "held":
                start, stop = split, w1
            else:
                start, stop = w0, w1
            if part in ("fit", "all"):  # a small budget fits the spike rule on a shorter stretch
                stop = min(stop, start + max(MIN_RULE_FIT_S, self.budget * (stop - start)))
            spikes = [np.asarray(t) for t in p.source.spike_times_s]
            out.append(Target(p.current_pA, spikes, w0, w1, p.source.name).clipped(start, stop))
        return out

    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Choose the orders and output-error iterations on the held-out part, fit the spike rule,
        refit both on the whole window; return the fit record."""
        step = MODEL_STEP_S if train.dt_s <= MODEL_STEP_S else train.dt_s
        prepared = [prepare(s, step) for s in train.stimuli]
        basis = spike_basis(step)
        n_fine = n_fine_lags(step)
        n_spike_options = [n_fine + m for m in range(0, N_COSINES + 1, 2)]
        candidates = candidate_orders(n_spike_options, reduced=self.budget < REDUCED_SEARCH_BELOW)
        with bar(len(candidates) + 5, desc="arx fit") as progress:
            gram_fit = self._gram(prepared, basis, "fit")
            held = _held_out_sets(prepared)
            orders, ranking, n_unstable = search_orders(gram_fit, held, candidates, step, progress)
            progress.set_postfix(rmse_mV=f"{ranking[0].rmse_mV:.2f}")
            # output-error refinement (Steiglitz-McBride), iterations chosen on the held-out part
            max_orders = (gram_fit.max_voltage, gram_fit.max_current)
            fit_parts = [(s, slice(0, p.split_bin())) for p in prepared for s in p.series()]
            filt_fit, sm_history = steiglitz_mcbride(
                gram_fit.solve(orders, step), basis, max_orders, fit_parts, partial(held_out_rmse, held=held)
            )
            n_sm = int(np.nanargmin(sm_history))
            progress.update(1)
            progress.set_postfix(rmse_mV=f"{sm_history[n_sm]:.2f}")
            # stage 1: the spike rule on the fit part, scored on the held-out part
            rule_options = dict(count_penalty=self.count_penalty, budget=self.budget, seed=self.seed)
            rule_fit, _ = fit_spike_rule(filt_fit, self._targets(prepared, step, "fit"), train.delta_s,
                                         progress=progress, **rule_options)
            held_score = score_rule(filt_fit, rule_fit, self._targets(prepared, step, "held"), train.delta_s)
            progress.set_postfix(held_gamma_over_R=f"{held_score.performance:.3f}")
            # final: the whole window
            filt, message = self._whole_window_filter(prepared, basis, gram_fit, orders, step, n_sm)
            self.filter = filt
            self.rule, search = fit_spike_rule(filt, self._targets(prepared, step, "all"), train.delta_s,
                                               progress=progress, **rule_options)
            whole = score_rule(filt, self.rule, self._targets(prepared, step, "whole"), train.delta_s)
        record = self._record(filt, orders, ranking, n_unstable, message, held_score, whole, rule_fit, step)
        record["spike_rule_search"] = search.to_record()
        record["validation"]["held_out_rmse_mV_by_output_error_iteration"] = sm_history
        record["validation"]["output_error_iterations"] = n_sm
        record["validation"]["held_out_rmse_mV"] = float(sm_history[n_sm])
        record["validation"]["held_out_rmse_mV_arx"] = float(sm_history[0])
        return record

    def _whole_window_filter(self, prepared: list[PreparedStimulus], basis: np.ndarray, gram_fit: GramAccumulator,
                             orders, step: float, n_output_error: int) -> tuple[ArxFilter, str]:
        """The chosen orders refitted on the whole window (fit part's normal equations plus the
        held-out part's), with ``n_output_error`` Steiglitz-McBride iterations, stabilised if needed.

        Returns the filter and the stabilisation message ("" when it was stable).
        """
        gram_all = self._gram(prepared, basis, "held")
        gram_all.gram += gram_fit.gram
        gram_all.xty += gram_fit.xty
        gram_all.yty += gram_fit.yty
        gram_all.n_rows += gram_fit.n_rows
        filt = gram_all.solve(orders, step)
        if n_output_error:
            all_parts = [(s, slice(0, p.n_bins)) for p in prepared for s in p.series()]
            max_orders = (gram_fit.max_voltage, gram_fit.max_current)
            filt, _ = steiglitz_mcbride(filt, basis, max_orders, all_parts, None, n_iterations=n_output_error)
        a_new, message = stabilise(filt.a)
        if message:
            warnings.warn(f"arx: {message}", RuntimeWarning, stacklevel=3)
            filt.a = a_new
        return filt, message

    def _record(self, filt, orders, ranking, n_unstable, message, held, whole, rule_fit, step) -> dict[str, Any]:
        g = spike_kernel(filt)
        a_poly_gain = 1.0 - float(np.sum(filt.a))
        return {
            "model_step_ms": step * 1e3,
            "orders": {
                "n_voltage_lags": orders.n_voltage,
                "n_current_lags": orders.n_current,
                "n_spike_basis": orders.n_spike,
                "spike_history_span_ms": float(np.flatnonzero(np.abs(filt.c) > 1e-9)[-1] + 1) * step * 1e3
                if filt.c.size and np.any(np.abs(filt.c) > 1e-9) else 0.0,
                "ridge": orders.ridge,
                "selected_by": "held-out free-running voltage RMSE",
            },
            "coefficients": {
                "a": filt.a.tolist(),
                "b_mV_per_pA": filt.b.tolist(),
                "dc_gain_mV_per_pA": float(np.sum(filt.b) / a_poly_gain),
                "resting_voltage_mV": filt.v_ref_mV + (filt.d - float(np.sum(filt.b)) * filt.i_ref_pA) / a_poly_gain,
                "pole_radius": pole_radius(filt.a),
                "slowest_time_constant_ms": float(-step * 1e3 / np.log(max(pole_radius(filt.a), 1e-12))),
                "spike_kernel_min_mV": float(g.min()) if g.size else 0.0,
                "spike_kernel_at_10_50_200_ms_mV": [float(g[k - 1]) if g.size >= k else 0.0 for k in
                                                    (int(0.01 / step), int(0.05 / step), int(0.2 / step))],
                "spike_kernel_length_ms": g.size * step * 1e3,
            },
            "stability": {"rejected_unstable_candidates": n_unstable, "final_fit_stabilised": bool(message),
                          "message": message},
            "spike_rule": self.rule.to_record(),
            "spike_rule_fit_part": rule_fit.to_record(),
            "held_out_per_stimulus": held.per_stimulus(),
            "validation": {
                "fit_fraction": FIT_FRACTION,
                "held_out_rmse_mV": ranking[0].rmse_mV,
                "held_out_one_step_rmse_mV": ranking[0].one_step_rmse_mV,
                "held_out_gamma": float(np.mean([h.gamma for h in held.stimuli])),
                "held_out_gamma_over_R": held.performance,
                "held_out_log_count_error": held.count_error(every_stimulus=True),
                "training_gamma": float(np.mean([h.gamma for h in whole.stimuli])),
                "training_gamma_over_R": whole.performance,
                "training_per_stimulus": whole.per_stimulus(),
                "top_candidates": [candidate_record(c) for c in ranking[:5]],
                "n_candidates": len(ranking) + n_unstable,
            },
            "count_penalty": self.count_penalty,
            "budget": self.budget,
        }

    # -- prediction ------------------------------------------------------------------
    def predict(self, stimulus: Stimulus) -> np.ndarray:
        if self.filter is None or self.rule is None:
            raise RuntimeError("arx: predict() called before fit()")
        f = bin_factor(stimulus.dt_s, self.filter.step_s)
        current = block_mean(stimulus.current_pA, f)
        start, stop = stimulus.window_s
        t = spike_times(self.filter, self.rule, current, start, stop)
        t = t[(t >= start) & (t <= stop)]
        keep = np.concatenate([[True], np.diff(t) > 0]) if t.size else np.zeros(0, bool)
        return t[keep]
