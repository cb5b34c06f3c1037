"""The ``gif`` model: a generalized integrate-and-fire neuron fitted as Mensi et al. (2012) and
Pozzorini et al. (2015) fit cortical cells.

Fit (training window only; every stimulus and repetition pooled):
1. The recorded spikes move back by a latency (the model's spike event is the threshold
   crossing, which precedes the recorded 0 mV crossing by about the upstroke's length).
2. Membrane and spike-triggered current eta: linear regression of dV/dt outside spike
   windows (:mod:`~qsnmc_plugins.gif.subthreshold`), then refitted on the voltage the model
   itself simulates with the recorded spikes imposed (:mod:`~qsnmc_plugins.gif.voltage_fit`),
   which pins g_L and E_L down. The membrane is driven by the raw current and two short
   low-pass filtered copies of it, with fitted gains (:mod:`~qsnmc_plugins.gif.input_filter`).
3. Escape-rate threshold V_T, Delta_V, spike-triggered threshold movement gamma and,
   where chosen, a threshold term driven by the injected current through slow filters
   (:mod:`~qsnmc_plugins.gif.threshold`) by convex maximum likelihood over every spike
   (:mod:`~qsnmc_plugins.gif.threshold_mle`).

Structure, latency and readout are chosen on held-out training data (``train.time_split(0.25)``):
each candidate is fitted on the first 75 % of every training window and scored on the rest
with every readout: one sampled train per repetition (stochastic), or one deterministic
train emitted when the hazard reaches a level (a grid of rates; each level judged by its
held-out Gamma/R averaged with its grid neighbours'), or per stimulus the level whose train
has about 0.8, 1 or 1.25 times the model's expected spike count (:class:`CountMatched`), each
minus ``count_penalty`` times the held-out mean |log| spike-count ratio. Latency 0 ms first
competes with the default 3 ms (at 3 ms alone the 1 kHz 2007 cell's fit once fired
tonically); at the better of the two the structure is chosen: the kernel basis (time
constants out to 10 s or 20 s), then the refractory period after the recorded spike (2 ms or
:data:`REFRACTORY_CANDIDATES_S`), then (with ``threshold_input=True``) whether the threshold
gets the input term (:data:`THRESHOLD_INPUT_CANDIDATE_S`), then (with ``voltage_coupling``,
default :data:`VOLTAGE_COUPLING`) whether it follows the filtered voltage as in the
inactivating GIF (:mod:`~qsnmc_plugins.gif.voltage_coupling`; the coupling's time constant
and onset are the grid point of highest training likelihood among those whose fitted strength
is positive, the threshold rising with the voltage as sodium inactivation makes it; the
coupled structure must beat the plain one by :data:`COUPLING_MARGIN`). From there the latency
climbs a 1 ms grid while the best readout improves. A candidate whose membrane fit is
non-physical drops out. The best latency and readout are refitted on the whole training window.

Prediction mode: there is no fixed default; the held-out split decides. On both cells measured
(the embedded one and the 2007 recordings) it chose the deterministic readout at one level, by
a wide margin over the stochastic one (0.77 vs 0.57-0.63 and 0.46 vs 0.18 held-out Gamma/R): an
independently sampled train per repetition adds the model's escape noise to the cell's own,
and Gamma penalises both. The count-matched readouts were chosen in some of the 2007 cell's
leave-one-stimulus-out folds (benchmarks/README.md).

Budget: at budget >= 0.5 the fit searches structure and latency as above (6-9 fits of the
membrane and threshold, and nine more threshold likelihoods for the coupling's grid); below,
the default structure (10 s kernels, 2 ms refractory period, no input term, no coupling) at
0 ms and the default latency.

The fit record's ``held_out_per_stimulus`` gives, for the chosen settings, each held-out
stimulus' Gamma/R, R and predicted / recorded spike counts.

Prediction simulates the whole protocol from its start, so a test window that continues a
training recording starts with the adaptation state the current built up before it.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from qsnmc import Model, Stimulus, TrainingData, ValidationScore, bar, score_heldout
from qsnmc_plugins.gif.basis import ExponentialBasis
from qsnmc_plugins.gif.binning import bin_mean, bin_stimulus, step_factor
from qsnmc_plugins.gif.simulate import simulate_spikes
from qsnmc_plugins.gif.subthreshold import Membrane, fit_membrane
from qsnmc_plugins.gif.threshold import EscapeThreshold
from qsnmc_plugins.gif.threshold_mle import ThresholdFit, fit_threshold, likelihood_data
from qsnmc_plugins.gif.voltage_coupling import VoltageCoupling, candidates as coupling_candidates
from qsnmc_plugins.gif.voltage_fit import fit_on_voltage

#: latency from the model's threshold crossing to the recorded spike (s): searched on this grid,
#: from the default towards higher held-out Gamma/R (one step at a time, while it improves)
LATENCY_GRID_S = (0.0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006)
#: where the search starts, and the latency used when the budget allows a single candidate (s)
DEFAULT_LATENCY_S = 0.003
#: refractory period after the recorded spike (s); the model's is latency + this
REFRACTORY_AFTER_SPIKE_S = 0.002
#: further refractory periods after the recorded spike that compete on the held-out split (s)
REFRACTORY_CANDIDATES_S: tuple[float, ...] = (0.006,)
#: left out of the membrane fits before each spike event (s)
CUT_BEFORE_S = 0.001
#: deterministic readout: candidate hazard levels (Hz) at which a spike is emitted
LEVELS_HZ = tuple(float(x) for x in np.geomspace(3.0, 1000.0, 16))
#: fraction of each training window held out to choose latency and readout
HELDOUT_FRACTION = 0.25
#: candidate bases of eta and gamma (first tau s, last tau s, count), chosen on the held-out split:
#: a cell that adapts over tens of seconds needs the long one, which extrapolates worse on others
KERNEL_BASES = ((0.003, 10.0, 8), (0.003, 20.0, 9))
#: time constants of the membrane's input filters (s): the raw current and these filtered ones drive it
INPUT_TAUS_S = (0.002, 0.006)
#: time constants of the slowly filtered currents that move the threshold (s; empty: none)
THRESHOLD_INPUT_TAUS_S: tuple[float, ...] = ()
#: with ``threshold_input=True``, this input term competes on the held-out split with none (at the
#: chosen kernel basis and the default latency); off by default, see benchmarks/README.md
THRESHOLD_INPUT_CANDIDATE_S: tuple[float, ...] = (0.03, 0.3)
#: weight of the held-out mean |log| spike-count ratio subtracted from the held-out P when
#: choosing kernel basis, latency and readout
COUNT_PENALTY = 0.1
#: whether a threshold coupled to the voltage (inactivating GIF, Mensi et al. 2016) competes on
#: the held-out split with the plain one
VOLTAGE_COUPLING = True
#: the coupled threshold (three more parameters) is kept only when its held-out merit beats the
#: best plain structure's by this much (benchmarks/README.md, gif, "A threshold coupled to the voltage")
COUPLING_MARGIN = 0.02
#: the readout that samples one train per repetition from the escape rate
STOCHASTIC = "stochastic"
#: ``coupling`` marker: search the coupling's time constant and onset by likelihood at the next fit
SEARCH = "search"
#: count-matched readouts: per stimulus, the level whose deterministic train has about this
#: many times the model's expected spike count (the mean over sampled trains)
COUNT_SCALES = (0.8, 1.0, 1.25)
#: sampled trains that estimate a stimulus' expected spike count for a count-matched readout
COUNT_SAMPLES = 16


@dataclass(frozen=True)
class CountMatched:
    """A deterministic readout whose level is chosen per stimulus: the grid level (of
    :data:`LEVELS_HZ`) whose train's spike count in the window is closest (in log) to ``scale``
    times the mean count of :data:`COUNT_SAMPLES` trains sampled from the escape rate."""

    scale: float

    def __str__(self) -> str:
        return f"count-matched x{self.scale:g}"


class GIFModel(Model):
    """Generalized integrate-and-fire neuron with spike-triggered current and moving escape-rate threshold."""

    name = "gif"
    description = ("GIF (Mensi 2012, Pozzorini 2015): membrane and eta by regression, threshold and gamma by convex ML; "
                   "optionally coupled to the voltage (iGIF, Mensi 2016)")

    param_grid = {"count_penalty": [0.0, 0.1, 0.3, 1.0], "threshold_input": [False, True],
                  "voltage_coupling": [False, True]}

    def __init__(self, seed: int = 0, budget: float = 1.0, count_penalty: float = COUNT_PENALTY,
                 threshold_input: bool = False, voltage_coupling: bool | None = None) -> None:
        super().__init__(seed=seed, budget=budget)
        self.count_penalty = float(count_penalty)
        self.threshold_input = bool(threshold_input)
        #: whether a voltage-coupled threshold competes on the held-out split (default :data:`VOLTAGE_COUPLING`)
        self.voltage_coupling = VOLTAGE_COUPLING if voltage_coupling is None else bool(voltage_coupling)
        #: the chosen coupling (None: none), or :data:`SEARCH`: choose it by likelihood at the next fit
        self.coupling: VoltageCoupling | None | str = None
        self.kernel_bases = tuple(ExponentialBasis.log_spaced(*b) for b in KERNEL_BASES)
        self.eta_basis = self.gamma_basis = self.kernel_bases[0]
        self.input_taus_s = INPUT_TAUS_S
        self.threshold_input_taus_s = THRESHOLD_INPUT_TAUS_S
        self.refractory_after_s = REFRACTORY_AFTER_SPIKE_S
        self.membrane: Membrane | None = None
        self.threshold: EscapeThreshold | None = None
        self.latency_s = DEFAULT_LATENCY_S
        #: "stochastic", or the deterministic hazard level (Hz)
        self.readout: str | float = STOCHASTIC
        #: candidate fits that failed during the last fit (structure, latency, error)
        self.failed_candidates: list[dict] = []

    # -- fit ---------------------------------------------------------------------------
    def _structure(self) -> dict:
        """The structural settings being scored: kernel span (s), refractory period after the recorded
        spike (ms), the threshold's input time constants (ms) and its voltage coupling."""
        coupling = self.coupling if isinstance(self.coupling, str) or self.coupling is None else self.coupling.to_record()
        return {"kernel_span_s": self.eta_basis.taus_s[-1], "refractory_after_spike_ms": 1e3 * self.refractory_after_s,
                "threshold_input_taus_ms": [1e3 * t for t in self.threshold_input_taus_s],
                "voltage_coupling": coupling}

    def _objective(self, score: ValidationScore) -> float:
        """Held-out P minus ``count_penalty`` times the mean |log| spike-count ratio."""
        return score.performance - self.count_penalty * score.log_count_error

    def fit_parameters(self, train: TrainingData, latency_s: float) -> tuple[Membrane, ThresholdFit, float]:
        """Membrane, eta, threshold and gamma for one latency (s); also the voltage RMS error (mV)."""
        binned = [bin_stimulus(s, latency_s) for s in train.stimuli]
        t_ref = latency_s + self.refractory_after_s
        regressed = fit_membrane(binned, self.eta_basis, t_ref, CUT_BEFORE_S, input_taus_s=self.input_taus_s)
        membrane, v_rmse = fit_on_voltage(binned, regressed, CUT_BEFORE_S)
        if self.coupling == SEARCH:
            # the coupling's filter and onset with the highest likelihood, among those whose threshold
            # rises with the voltage (sodium inactivation's sign); none such: no coupling
            plain = likelihood_data(membrane, binned, self.gamma_basis, self.threshold_input_taus_s)
            v_model = plain.features[:, 1] + plain.v_centre_mV
            fits = {None: fit_threshold(plain, self.gamma_basis)}
            for c in coupling_candidates(v_model):
                fit = fit_threshold(likelihood_data(membrane, binned, self.gamma_basis, self.threshold_input_taus_s, c),
                                    self.gamma_basis)
                if fit.threshold.coupling_mV_per_mV > 0.0:
                    fits[c] = fit
            coupled = [c for c in fits if c is not None]
            self.coupling = max(coupled, key=lambda c: fits[c].log_likelihood) if coupled else None
            return membrane, fits[self.coupling], v_rmse
        data = likelihood_data(membrane, binned, self.gamma_basis, self.threshold_input_taus_s, self.coupling)
        return membrane, fit_threshold(data, self.gamma_basis), v_rmse

    def _score_latency(self, fold, latency_s: float) -> list[dict]:
        """Fit on ``fold.fit`` with one latency; held-out scores of every readout.

        Each candidate's ``merit`` is its held-out objective, for a deterministic level (or a
        count-matched scale) the mean over it and its neighbours on the level (scale) grid: the
        held-out Gamma/R is jagged in the level (a few seconds of held-out data), and the
        smoothed value does not chase that noise.
        """
        try:
            membrane, thr, _ = self.fit_parameters(fold.fit, latency_s)
        except RuntimeError as exc:  # a non-physical membrane at this latency: the candidate drops out
            self.failed_candidates.append({**self._structure(), "latency_ms": 1e3 * latency_s, "error": str(exc)})
            return []
        self.membrane, self.threshold, self.latency_s = membrane, thr.threshold, latency_s
        readouts = (STOCHASTIC, *LEVELS_HZ, *(CountMatched(c) for c in COUNT_SCALES))
        trains = {h.name: self._readout_trains(h.stimulus, readouts) for h in fold.heldout}
        out = []
        for readout in readouts:
            score = score_heldout({name: by[readout] for name, by in trains.items()}, fold.heldout, fold.fit.delta_s)
            out.append({"latency_ms": 1e3 * latency_s, "readout": readout, "score": score,
                        "merit": self._objective(score), "structure": self._structure()})
        # levels, and count-matched scales, each judged with their grid neighbours
        for group in (out[1 : 1 + len(LEVELS_HZ)], out[1 + len(LEVELS_HZ) :]):
            merits = [self._objective(x["score"]) for x in group]
            for k, c in enumerate(group):
                c["merit"] = float(np.mean(merits[max(k - 1, 0) : k + 2]))
        return out

    def fit(self, train: TrainingData) -> dict[str, Any]:
        """Choose latency and readout on a held-out split, refit on the whole window; return the fit record."""
        t_start = time.perf_counter()
        fold = train.time_split(HELDOUT_FRACTION)
        grid = list(LATENCY_GRID_S)
        self.failed_candidates = []
        # every fit starts from the default structure (a refit must not inherit the last choice)
        self.eta_basis = self.gamma_basis = self.kernel_bases[0]
        self.refractory_after_s, self.threshold_input_taus_s = REFRACTORY_AFTER_SPIKE_S, THRESHOLD_INPUT_TAUS_S
        self.coupling = None
        best_of: dict[int, float] = {}
        candidates: list[dict] = []
        progress = bar(total=None, desc="gif: kernel and latency search")

        def visit(i: int) -> float:
            if i not in best_of:
                scored = self._score_latency(fold, grid[i])
                candidates.extend(scored)
                best_of[i] = max((c["merit"] for c in scored), default=-np.inf)
                progress.update(1)
            return best_of[i]

        try:
            i = grid.index(DEFAULT_LATENCY_S)
            # a coarse recording may want no latency at all: 0 ms competes with the default
            if visit(0) > visit(i):
                i = 0
            if self.budget >= 0.5:  # structure at that latency: kernel basis, refractory period, threshold terms
                def structure_merit(basis: ExponentialBasis, refractory_s: float, taus: tuple[float, ...],
                                    coupling: VoltageCoupling | None | str) -> tuple[float, VoltageCoupling | None]:
                    """Held-out merit of one structure, and its coupling (a searched one as found)."""
                    self.eta_basis = self.gamma_basis = basis
                    self.refractory_after_s, self.threshold_input_taus_s = refractory_s, taus
                    self.coupling = coupling
                    if self._structure() == default_structure:
                        return best_of[i], coupling
                    scored = self._score_latency(fold, grid[i])
                    candidates.extend(scored)
                    progress.update(1)
                    found = None if self.coupling == SEARCH else self.coupling  # SEARCH left: the fit failed
                    return max((c["merit"] for c in scored), default=-np.inf), found

                default_structure = self._structure()
                ref0, taus0, coupling0 = self.refractory_after_s, self.threshold_input_taus_s, self.coupling
                tried: dict[tuple, float] = {}

                def attempt(basis: ExponentialBasis, ref: float, taus: tuple[float, ...],
                            coupling: VoltageCoupling | None | str) -> None:
                    merit, found = structure_merit(basis, ref, taus, coupling)
                    if coupling == SEARCH and found is None:  # no coupling found: the plain structure, already tried
                        return
                    tried[(basis, ref, taus, found)] = merit

                for b in self.kernel_bases:
                    attempt(b, ref0, taus0, coupling0)
                basis = max(tried, key=tried.get)[0]
                for ref in REFRACTORY_CANDIDATES_S:
                    attempt(basis, ref, taus0, coupling0)
                ref = max((k for k in tried if k[0] == basis), key=tried.get)[1]
                if self.threshold_input:
                    attempt(basis, ref, THRESHOLD_INPUT_CANDIDATE_S, coupling0)
                plain_best = max(tried.items(), key=lambda kv: kv[1])
                if self.voltage_coupling:
                    taus = max((k for k in tried if k[:2] == (basis, ref)), key=tried.get)[2]
                    attempt(basis, ref, taus, SEARCH)
                coupled = [kv for kv in tried.items() if kv[0][3] is not None]
                (basis, ref, taus, coupling), merit = plain_best
                if coupled and coupled[0][1] >= plain_best[1] + COUPLING_MARGIN:
                    (basis, ref, taus, coupling), merit = coupled[0]
                self.eta_basis = self.gamma_basis = basis
                self.refractory_after_s, self.threshold_input_taus_s, self.coupling = ref, taus, coupling
                if self._structure() != default_structure:  # the other latencies' scores were for the default structure
                    best_of.clear()
                    best_of[i] = merit
            if self.budget >= 0.5:  # hill-climb on the grid while a neighbour scores higher
                while True:
                    neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(grid)]
                    j = max(neighbours, key=visit)
                    if visit(j) <= visit(i):
                        break
                    i = j
            final = [c for c in candidates if c["structure"] == self._structure()]
            if not final:
                raise RuntimeError(f"gif: no candidate fit succeeded: {self.failed_candidates}")
            best = max(final, key=lambda c: c["merit"])
            self.latency_s, self.readout = 1e-3 * best["latency_ms"], best["readout"]
            membrane, thr, v_rmse = self.fit_parameters(train, self.latency_s)
            self.membrane, self.threshold = membrane, thr.threshold
        finally:
            progress.close()
        stochastic = [c for c in final if c["readout"] == STOCHASTIC and c["latency_ms"] == best["latency_ms"]][0]
        return {
            "membrane": self.membrane.to_record(),
            "voltage_rmse_mV": v_rmse,
            "threshold": thr.to_record(),
            "latency_ms": 1e3 * self.latency_s,
            "model_step_ms": 1e3 * train.dt_s * step_factor(train.dt_s),
            "count_penalty": self.count_penalty,
            "threshold_input": self.threshold_input,
            "voltage_coupling_candidate": self.voltage_coupling,
            "prediction_mode": ("stochastic" if self.readout == STOCHASTIC else "count-matched"
                                if isinstance(self.readout, CountMatched) else "deterministic"),
            "deterministic_level_hz": float(self.readout) if isinstance(self.readout, float) else None,
            "count_scale": self.readout.scale if isinstance(self.readout, CountMatched) else None,
            "prediction_mode_why": (
                f"highest held-out Gamma/R (minus {self.count_penalty} x mean |log count ratio|) on {fold.label} among the stochastic readout (one sampled train "
                f"per repetition), deterministic hazard levels {[round(x, 1) for x in LEVELS_HZ]} Hz "
                f"(each level's Gamma/R averaged with its grid neighbours') and levels matched per stimulus "
                f"to {list(COUNT_SCALES)} x the expected count: {best['merit']:.3f} "
                f"vs {stochastic['merit']:.3f} stochastic"),
            "held_out_per_stimulus": best["score"].per_stimulus(),
            "validation": {
                "fold": fold.label,
                "chosen": best["score"].to_dict(),
                **self._structure(),
                "candidates": [{**c["structure"], "latency_ms": c["latency_ms"],
                                "readout": str(c["readout"]) if isinstance(c["readout"], CountMatched) else c["readout"],
                                "performance": c["score"].performance, "merit": c["merit"],
                                "log_count_error": c["score"].log_count_error} for c in candidates],
                "failed_candidates": self.failed_candidates,
            },
            "fit_time_s": time.perf_counter() - t_start,
        }

    # -- predict -----------------------------------------------------------------------
    def predict(self, stimulus: Stimulus) -> np.ndarray | list[np.ndarray]:
        """Spike times (s) inside ``stimulus.window_s``: one train (deterministic) or one per repetition."""
        if self.membrane is None or self.threshold is None:
            raise RuntimeError("gif: predict() before fit()")
        return self._readout_trains(stimulus, (self.readout,))[self.readout]

    def _readout_trains(self, stimulus: Stimulus, readouts: tuple) -> dict:
        """Spike times (s) inside ``stimulus.window_s`` for each readout: a list of one train per
        repetition (:data:`STOCHASTIC`), or one train (a level in Hz, or :class:`CountMatched`)."""
        factor = step_factor(stimulus.dt_s)
        step = stimulus.dt_s * factor
        start, stop = stimulus.window_s
        n = min(stimulus.current_pA.size // factor, int(np.ceil(stop / step)) + 1)
        current = bin_mean(stimulus.current_pA[: n * factor], factor)

        def times(bins: np.ndarray) -> np.ndarray:
            t = (bins + 0.5) * step + self.latency_s
            return np.asarray(t[(t >= start) & (t <= stop)], dtype=np.float64)

        def sampled(count: int, stream: int) -> list[np.ndarray]:
            key = [self.seed, zlib.crc32(stimulus.name.encode())]
            rng = np.random.default_rng(key if stream == 0 else [*key, stream])
            return [times(simulate_spikes(self.membrane, self.threshold, current, step, rng=rng)) for _ in range(count)]

        matched = [r for r in readouts if isinstance(r, CountMatched)]
        levels = set(LEVELS_HZ) if matched else set()
        levels |= {float(r) for r in readouts if isinstance(r, (int, float))}
        out: dict = {level: times(simulate_spikes(self.membrane, self.threshold, current, step, level_hz=level))
                     for level in sorted(levels)}
        if STOCHASTIC in readouts:
            out[STOCHASTIC] = sampled(stimulus.n_repetitions, 0)
        if matched:
            expected = float(np.mean([t.size for t in sampled(COUNT_SAMPLES, 1)]))
            for r in matched:
                level = min(LEVELS_HZ, key=lambda x: abs(np.log((out[x].size + 1.0) / (r.scale * expected + 1.0))))
                out[r] = out[level]
        return out
