"""Stage 2, the choice: the search's best candidates simulated continuously, scored on the held-out part.

Each candidate of :func:`qsnmc_plugins.adex.search.search` is re-simulated over the whole
training window in one continuous run (no segments, the slow current seen whole), shifted
by the spike latency of ``latency_grid_ms`` that scores best on the fit windows (a pure
shift, scored without re-simulation), and scored on the held-out windows as the search
scores: P minus the count penalty. The model keeps the best of them (:func:`qsnmc.best_candidate`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qsnmc import Candidate
from qsnmc_plugins.adex.parameters import AdExParameters
from qsnmc_plugins.adex.search import PENALTY_GAMMA, GammaObjective, SearchResult
from qsnmc_plugins.adex.simulate import simulate_stimuli_segmented


@dataclass(frozen=True)
class Validated:
    """One validated candidate: its parameters (latency included) and its held-out score."""

    params: AdExParameters
    candidate: Candidate  #: choice: the DE coordinates and latency; objective: the held-out score
    fit_score: float  #: the continuous run's score on the fit windows (at the chosen latency)


def validate(found: SearchResult, objective: GammaObjective, latency_grid_ms: Sequence[float]) -> list[Validated]:
    """Every candidate of ``found`` with its latency and its fit-window and held-out scores
    (``PENALTY_GAMMA`` and no latency for a simulation that blows up)."""
    chosen = [found.space.apply(objective.base, x) for x in found.vectors]
    dt = objective.stimuli[0].dt_s * objective.step_factor
    scoring = objective.scoring
    runs = simulate_stimuli_segmented(chosen, objective.currents, dt, [w[1] for w in scoring.windows["held_out"]],
                                      1, 0.0)
    out = []
    for j, params in enumerate(chosen):
        coords = {n: float(v) for n, v in zip(found.space.names, found.vectors[j])}
        extra = {"segmented_fit_score": float(found.segmented_scores[j])}
        if not all(res.finite[j] for res in runs):
            out.append(Validated(params, Candidate({**coords, "latency_ms": params.latency_ms}, None, PENALTY_GAMMA,
                                                   {**extra, "fit_score": PENALTY_GAMMA}), PENALTY_GAMMA))
            continue
        trains = [res.spike_times_s[j] for res in runs]
        fits = [scoring.score(scoring.validation([t + lat * 1e-3 for t in trains], "fit")) for lat in latency_grid_ms]
        lat = float(latency_grid_ms[int(np.argmax(fits))])
        params = params.with_values(latency_ms=params.latency_ms + lat)
        held = scoring.validation([t + lat * 1e-3 for t in trains], "held_out")
        candidate = Candidate({**coords, "latency_ms": params.latency_ms}, held, scoring.score(held),
                              {**extra, "fit_score": float(max(fits))})
        out.append(Validated(params, candidate, float(max(fits))))
    return out
