"""The GIF's structure, latency and readout, chosen on held-out training data.

Each candidate structure (kernel basis, refractory period after the recorded spike, voltage
coupling) at a latency is fitted on the fold's fit part (:func:`fit_parameters`) and every
readout scored on its held-out part (:func:`score_latency`). :func:`search` returns every
scored :class:`qsnmc.Candidate` and the chosen structure; it never touches a model. Order:
latency 0 competes with the default; at the better of the two the kernel basis, then the
refractory period, then (where enabled) the voltage coupling are chosen; then the latency
climbs its grid while the best merit improves.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from qsnmc import Candidate, CountPenalty, Fold, SearchProgress, TrainingData, best_candidate, score_heldout

from qsnmc_plugins.gif.basis import ExponentialBasis
from qsnmc_plugins.gif.binning import bin_stimulus
from qsnmc_plugins.gif.readout import STOCHASTIC, FittedGIF, Readout, readout_trains
from qsnmc_plugins.gif.settings import GIFSettings
from qsnmc_plugins.gif.subthreshold import Membrane, fit_membrane
from qsnmc_plugins.gif.threshold_mle import ThresholdFit, fit_threshold, likelihood_data
from qsnmc_plugins.gif.threshold import VoltageCoupling, coupling_candidates
from qsnmc_plugins.gif.voltage_fit import fit_on_voltage

#: below this budget only the default structure is fitted, at latency 0 or the default
STRUCTURE_SEARCH_BUDGET = 0.5


@dataclass(frozen=True)
class Structure:
    """What a candidate fit holds fixed: the eta / gamma basis, the refractory period after the
    recorded spike (s) and the voltage coupling (None: none)."""

    basis: ExponentialBasis
    refractory_after_s: float
    coupling: VoltageCoupling | None = None

    def to_choice(self) -> dict[str, Any]:
        return {"kernel_span_s": self.basis.taus_s[-1], "refractory_after_spike_ms": 1e3 * self.refractory_after_s,
                "voltage_coupling": None if self.coupling is None else self.coupling.to_record()}


def kernel_bases(s: GIFSettings) -> list[ExponentialBasis]:
    """The candidate eta / gamma bases of the settings, the default first."""
    return [ExponentialBasis.log_spaced(s.kernel_first_tau_s, last, n)
            for last, n in zip(s.kernel_last_taus_s, s.kernel_sizes)]


def fit_parameters(train: TrainingData, latency_s: float, structure: Structure, s: GIFSettings,
                   search_coupling: bool = False) -> tuple[Membrane, ThresholdFit, float, Structure]:
    """Membrane, eta, threshold and gamma for one latency (s) and structure; also the voltage RMS
    error (mV) and the structure fitted. With ``search_coupling`` the coupling's filter and onset
    are the grid point of highest training likelihood among those whose threshold rises with the
    voltage (sodium inactivation's sign); none such: no coupling (the plain fit).

    Raises:
        RuntimeError: the membrane fit is non-physical.
    """
    binned = [bin_stimulus(st, latency_s, s.model_step_s) for st in train.stimuli]
    regressed = fit_membrane(binned, structure.basis, latency_s + structure.refractory_after_s, s.cut_before_s,
                             s.eta_ridge, s.input_taus_s)
    membrane, v_rmse = fit_on_voltage(binned, regressed, s.cut_before_s, s.membrane_tau_bounds_s, s.voltage_fit_stride)
    data = likelihood_data(membrane, binned, structure.basis, None if search_coupling else structure.coupling)
    first = fit_threshold(data, structure.basis, s.threshold_ridge_per_spike)
    if not search_coupling:
        return membrane, first, v_rmse, structure
    fits = {None: first}
    v_model = data.features[:, 1] + data.v_centre_mV
    for c in coupling_candidates(v_model, s.coupling_taus_s, s.coupling_onset_quantiles):
        fit = fit_threshold(likelihood_data(membrane, binned, structure.basis, c), structure.basis,
                            s.threshold_ridge_per_spike)
        if fit.threshold.coupling_mV_per_mV > 0.0:
            fits[c] = fit
    coupled = [c for c in fits if c is not None]
    found = max(coupled, key=lambda c: fits[c].log_likelihood) if coupled else None
    return membrane, fits[found], v_rmse, replace(structure, coupling=found)


def score_latency(fold: Fold, latency_s: float, structure: Structure, s: GIFSettings, seed: int,
                  search_coupling: bool = False) -> tuple[list[Candidate], Structure, str | None]:
    """Fit on ``fold.fit`` at one latency; a candidate per readout, scored on the held-out part.

    Each candidate's objective (its merit) is the held-out P minus the count penalty, for a
    level (or a count-matched scale) the mean over it and its neighbours on the level (scale)
    grid: the held-out Gamma/R is jagged in the level (a few seconds of held-out data), and the
    smoothed value does not chase that noise. With ``search_coupling`` the coupling is searched
    (:func:`fit_parameters`). Returns the candidates, the structure fitted (with the coupling
    found) and the error of a non-physical fit (then no candidates).
    """
    try:
        membrane, thr, _, structure = fit_parameters(fold.fit, latency_s, structure, s, search_coupling)
    except RuntimeError as exc:
        return [], structure, str(exc)
    gif = FittedGIF(membrane, thr.threshold, latency_s)
    options = (STOCHASTIC, *(Readout("level", x) for x in s.levels_hz),
               *(Readout("count-matched", c) for c in s.count_scales))
    trains = {h.name: readout_trains(gif, h.stimulus, options, levels_hz=s.levels_hz, count_samples=s.count_samples,
                                     model_step_s=s.model_step_s, seed=seed) for h in fold.heldout}
    scores = [score_heldout({name: by[r] for name, by in trains.items()}, fold.heldout, fold.fit.delta_s)
              for r in options]
    penalty = CountPenalty(s.count_penalty, s.count_error_stimuli)
    merits = [penalty.objective(sc) for sc in scores]
    n_levels = len(s.levels_hz)
    for lo, hi in ((1, 1 + n_levels), (1 + n_levels, len(options))):
        group = merits[lo:hi]
        merits[lo:hi] = [float(np.mean(group[max(k - 1, 0) : k + 2])) for k in range(len(group))]
    choice = {**structure.to_choice(), "latency_ms": 1e3 * latency_s}
    return [Candidate({**choice, "readout": str(r)}, sc, m, {"readout": r, "structure": structure,
                                                             "latency_s": latency_s})
            for r, sc, m in zip(options, scores, merits)], structure, None


class _Scores:
    """Every (structure, latency index) scored at most once on the fold; candidates kept in order."""

    def __init__(self, fold: Fold, s: GIFSettings, seed: int, progress: SearchProgress) -> None:
        self.fold, self.settings, self.seed, self.progress = fold, s, seed, progress
        self.candidates: list[Candidate] = []
        self.failed: list[dict[str, Any]] = []
        self.best: dict[tuple[Structure, int], float] = {}

    def _add(self, scored: list[Candidate], structure: Structure, latency_s: float, error: str | None) -> float:
        if error is not None:
            self.failed.append({**structure.to_choice(), "latency_ms": 1e3 * latency_s, "error": error})
        self.candidates.extend(scored)
        merit = max((c.objective for c in scored), default=-np.inf)
        top = max(merit, -np.inf if self.progress.best is None else self.progress.best)
        self.progress.step(best=top if np.isfinite(top) else None)
        return merit

    def merit(self, structure: Structure, i: int) -> float:
        """The best held-out merit of ``structure`` at the ``i``-th latency of the grid."""
        if (structure, i) not in self.best:
            latency = self.settings.latency_grid_s[i]
            scored, _, error = score_latency(self.fold, latency, structure, self.settings, self.seed)
            self.best[(structure, i)] = self._add(scored, structure, latency, error)
        return self.best[(structure, i)]

    def coupled(self, structure: Structure, i: int) -> tuple[Structure | None, float]:
        """The coupling searched at ``structure`` and the ``i``-th latency: the coupled structure
        and its merit, or None where no coupling was found (or the fit failed)."""
        latency = self.settings.latency_grid_s[i]
        scored, found, error = score_latency(self.fold, latency, structure, self.settings, self.seed, True)
        if found.coupling is None:  # none found (or a failed fit): the plain structure, already scored
            self.failed += [] if error is None else [{**found.to_choice(), "latency_ms": 1e3 * latency, "error": error}]
            return None, -np.inf
        self.best[(found, i)] = self._add(scored, found, latency, None)
        return found, self.best[(found, i)]


def _choose_structure(scores: _Scores, i: int, default: Structure, s: GIFSettings) -> Structure:
    """At the ``i``-th latency: the kernel basis, then the refractory period, then the coupling
    (kept only when it beats the best plain structure by ``coupling_margin``)."""
    bases = [Structure(b, default.refractory_after_s) for b in kernel_bases(s)]
    tried = {structure: scores.merit(structure, i) for structure in bases}
    basis = max(tried, key=tried.get).basis
    for ref in s.refractory_candidates_s:
        tried[Structure(basis, ref)] = scores.merit(Structure(basis, ref), i)
    ref = max((k for k in tried if k.basis == basis), key=tried.get).refractory_after_s
    best = max(tried, key=tried.get)
    if s.voltage_coupling:
        coupled, merit = scores.coupled(Structure(basis, ref), i)
        if coupled is not None and merit >= tried[best] + s.coupling_margin:
            return coupled
    return best


def _climb(scores: _Scores, structure: Structure, i: int) -> None:
    """Hill-climb the latency grid from index ``i`` while a neighbour scores higher."""
    n = len(scores.settings.latency_grid_s)
    while True:
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < n]
        j = max(neighbours, key=lambda k: scores.merit(structure, k))
        if scores.merit(structure, j) <= scores.merit(structure, i):
            return
        i = j


def search(fold: Fold, s: GIFSettings, budget: float, seed: int) -> tuple[list[Candidate], Candidate, list[dict]]:
    """Every candidate scored on ``fold``, the chosen one (structure, latency and readout) and
    the candidate fits that failed.

    Raises:
        RuntimeError: no candidate fit succeeded.
    """
    default = Structure(kernel_bases(s)[0], s.refractory_after_spike_s)
    with SearchProgress(None, "gif: structure and latency search") as progress:
        scores = _Scores(fold, s, seed, progress)
        i = s.latency_grid_s.index(s.default_latency_s)
        if scores.merit(default, 0) > scores.merit(default, i):  # a coarse recording may want no latency at all
            i = 0
        structure = default
        if budget >= STRUCTURE_SEARCH_BUDGET:
            structure = _choose_structure(scores, i, default, s)
            _climb(scores, structure, i)
    final = [c for c in scores.candidates if c.extra["structure"] == structure]
    if not final:
        raise RuntimeError(f"gif: no candidate fit succeeded: {scores.failed}")
    return scores.candidates, best_candidate(final), scores.failed
