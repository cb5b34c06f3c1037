"""The official QSNMC score: coincidence factor, intrinsic reliability, bootstrap error, winner.

References:
- Kistler, Gerstner & van Hemmen (1997). Reduction of the Hodgkin-Huxley equations
  to a single-variable threshold model. Neural Computation 9:1015.
- Jolivet, Kobayashi, Rauch, Naud, Shinomoto & Gerstner (2008). A benchmark test for
  a quantitative assessment of simple neuron models. J Neurosci Methods 169:417.
- Naud, Gerhard, Mensi & Gerstner (2011). Improved similarity measures for small sets
  of spike trains. Neural Computation 23:3016 (section 2.7: coincidences counted
  without replacement; section 5: the 2009 Challenge A scoring).

All times are in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

#: tolerance (s) added to the coincidence window so that a spike pair exactly
#: ``delta`` apart counts despite floating-point rounding of the times.
TIME_TOLERANCE_S = 1e-9

#: number of bootstrap resamples of the official error estimate
N_BOOTSTRAP = 10_000


class InvalidPrediction(ValueError):
    """A prediction that cannot be scored (e.g. a rate with 2*nu*delta >= 1)."""


def _as_train(spikes: np.ndarray | Sequence[float]) -> np.ndarray:
    a = np.asarray(spikes, dtype=np.float64).ravel()
    if a.size > 1 and (a[1:] < a[:-1]).any():
        a = np.sort(a)
    return a


def n_coincidences(data_spikes: np.ndarray, model_spikes: np.ndarray, delta: float = 0.004) -> int:
    """Number of coincidences counted without replacement.

    Two spikes coincide when ``|t_data - t_model| <= delta``; each spike of either train
    takes part in at most one coincidence, and the count is the largest number of
    such disjoint pairs (a maximum bipartite matching; with well-separated spikes it is
    simply the number of data spikes that have a model spike within ``delta``).
    """
    return _matched_pairs(_as_train(data_spikes), _as_train(model_spikes), delta)


def _matched_pairs(d: np.ndarray, m: np.ndarray, delta: float) -> int:
    """:func:`n_coincidences` of sorted trains (s).

    Every data spike's partners form a run of the sorted model train, and the runs' ends never
    decrease from one data spike to the next (all windows are ``2 delta`` wide). In such a graph
    the greedy matching is a maximum one: each data spike in turn takes the earliest model
    spike of its window not yet taken (Glover 1967, for convex bipartite graphs; tests check it
    against SciPy's Hopcroft-Karp).
    """
    if d.size == 0 or m.size == 0:
        return 0
    lo = np.searchsorted(m, d - delta - TIME_TOLERANCE_S, side="left")
    hi = np.searchsorted(m, d + delta + TIME_TOLERANCE_S, side="right")
    has = hi > lo
    first = lo[has]
    if first.size < 2 or (np.all(hi[has] - first == 1) and np.all(np.diff(first) > 0)):
        return int(first.size)  # every data spike has one partner, and no two share it
    pairs, free = 0, 0  # free: the earliest model spike not yet taken or passed over
    for a, b in zip(first.tolist(), hi[has].tolist()):
        j = a if a > free else free
        if j < b:
            pairs += 1
            free = j + 1
    return pairs


def coincidence_factor(
    data_spikes: np.ndarray | Sequence[float],
    model_spikes: np.ndarray | Sequence[float],
    delta: float = 0.004,
    *,
    duration: float,
) -> float:
    """Coincidence factor Gamma of a model train against a data (target) train.

    ``Gamma = (N_coinc - <N_coinc>) * 2 / ((N_data + N_model) * (1 - 2 nu delta))``
    with ``<N_coinc> = 2 nu delta N_data`` and ``nu = N_model / duration`` (the model's
    rate), where ``N_coinc`` counts coincidences within ``±delta`` without
    replacement (:func:`n_coincidences`). Gamma is 1 for identical trains, about 0 for
    a Poisson train of any rate, and may be negative (it is not clipped).
    (Kistler et al. 1997; Jolivet et al. 2008; Naud et al. 2011, section 2.7.)

    Args:
        data_spikes: recorded spike times (s).
        model_spikes: predicted spike times (s).
        delta: half-width of the coincidence window (s); 4 ms in 2009, 2 ms in 2007.
        duration: length of the scored window (s).

    Returns:
        Gamma; 0.0 for an empty prediction.

    Raises:
        InvalidPrediction: when ``2 nu delta >= 1`` (the normaliser vanishes).
    """
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration} s")
    d = _as_train(data_spikes)
    m = _as_train(model_spikes)
    if m.size == 0:
        return 0.0
    nu = m.size / duration
    norm = 1.0 - 2.0 * nu * delta
    if norm <= 0:
        raise InvalidPrediction(
            f"rate {nu:.1f} Hz gives 2*nu*delta = {2 * nu * delta:.2f} >= 1: the coincidence factor is undefined"
        )
    n_coinc = _matched_pairs(d, m, delta)
    expected = 2.0 * nu * delta * d.size
    return float((n_coinc - expected) * 2.0 / ((d.size + m.size) * norm))


def intrinsic_reliability(recordings: Sequence[np.ndarray], delta: float = 0.004, *, duration: float) -> float:
    """Intrinsic reliability R: mean Gamma over pairs of distinct recordings.

    Gamma is not symmetric, so each pair contributes the mean of both directions,
    which equals the mean over all ordered pairs ``i != j`` (Naud et al. 2011, section 5).
    """
    n = len(recordings)
    if n < 2:
        raise ValueError(f"intrinsic reliability needs at least 2 repetitions, got {n}")
    gammas = [
        coincidence_factor(recordings[i], recordings[j], delta, duration=duration)
        for i in range(n)
        for j in range(n)
        if i != j
    ]
    return float(np.mean(gammas))


def repetition_gammas(
    recordings: Sequence[np.ndarray],
    prediction: np.ndarray | Sequence[np.ndarray],
    delta: float = 0.004,
    *,
    duration: float,
) -> np.ndarray:
    """Gamma_i of prediction i against recording i (matched pairs).

    ``prediction`` is one train (a deterministic model, compared with every recording)
    or one train per recording.
    """
    trains = as_prediction_list(prediction, len(recordings))
    return np.array(
        [coincidence_factor(r, p, delta, duration=duration) for r, p in zip(recordings, trains)], dtype=np.float64
    )


def as_prediction_list(prediction: np.ndarray | Sequence[np.ndarray], n_repetitions: int) -> list[np.ndarray]:
    """Normalise a model's output into one train per repetition."""
    if isinstance(prediction, np.ndarray) and prediction.dtype != object and prediction.ndim <= 1:
        return [prediction] * n_repetitions
    trains = [np.asarray(p, dtype=np.float64).ravel() for p in prediction]
    if len(trains) == 1:
        return trains * n_repetitions
    if len(trains) != n_repetitions:
        raise InvalidPrediction(f"got {len(trains)} predicted trains for {n_repetitions} repetitions")
    return trains


def bootstrap_error(
    normalised_gammas: Sequence[np.ndarray] | np.ndarray, n_resamples: int = N_BOOTSTRAP, seed: int = 0
) -> float:
    """Bootstrap error of the performance P.

    For one stimulus (a 1-D array of ``Gamma_i / R``): ``n_resamples`` resamples with
    replacement from a generator seeded with ``seed``; ``mu_j`` is the mean of
    resample j and ``Err = sqrt(sum_j (mu_j - P)^2 / (n - 1))`` with P the mean of
    the original values (the 2009 rule). For several stimuli (a list of 1-D arrays),
    each resample draws within every stimulus and averages the per-stimulus means,
    matching :func:`performance`.
    """
    x = normalised_gammas
    if np.ndim(x[0]) == 0:
        groups = [np.asarray(x, dtype=np.float64)]
    else:
        groups = [np.asarray(g, dtype=np.float64).ravel() for g in x]
    rng = np.random.default_rng(seed)
    means = np.zeros(n_resamples)
    for g in groups:
        idx = rng.integers(0, g.size, size=(n_resamples, g.size))
        means += g[idx].mean(axis=1)
    means /= len(groups)
    p = float(np.mean([g.mean() for g in groups]))
    return float(np.sqrt(np.sum((means - p) ** 2) / (n_resamples - 1)))


def performance(normalised_gammas: Sequence[np.ndarray]) -> float:
    """P: the mean of ``Gamma_i / R`` over repetitions, averaged over stimuli with equal weight."""
    return float(np.mean([np.mean(g) for g in normalised_gammas]))


@dataclass(frozen=True)
class StimulusScore:
    """Score of one model on one test stimulus."""

    stimulus: str
    gammas: np.ndarray  #: Gamma_i per repetition
    reliability: float  #: R of this stimulus' recordings
    n_predicted: float = float("nan")  #: mean predicted spikes per train
    n_recorded: float = float("nan")  #: mean recorded spikes per repetition

    @property
    def normalised(self) -> np.ndarray:
        return self.gammas / self.reliability


def score_stimulus(
    stimulus: str,
    recordings: Sequence[np.ndarray],
    prediction: np.ndarray | Sequence[np.ndarray],
    reliability: float,
    delta: float = 0.004,
    *,
    duration: float,
) -> StimulusScore:
    """Gamma of a prediction against each recording of one stimulus, with the spike counts."""
    trains = as_prediction_list(prediction, len(recordings))
    return StimulusScore(stimulus, repetition_gammas(recordings, trains, delta, duration=duration), reliability,
                         float(np.mean([t.size for t in trains])), float(np.mean([np.size(r) for r in recordings])))


def decide_winner(entries: Mapping[str, tuple[float, float]], min_entries: int = 3) -> dict[str, str]:
    """The competition's verdict for each entry, from ``{name: (P, Err)}``.

    Rules (QSNMC 2009 instructions; Naud et al. 2011, section 5):
    - Entry j wins *significantly* iff ``P(j) - Err(j) > P(i)`` for every other entry i,
      and only when there are at least ``min_entries`` (3) entries; at most one entry wins.
    - Otherwise the win is *shared* by every entry i with ``P(i) >= P(best) - Err(best)``,
      where best is the entry with the highest P.
    Entries whose P is not finite (failed rows) take no part and get ``""``.

    Returns:
        ``{name: "significant win" | "shared win" | ""}``.
    """
    valid = {k: (float(p), float(e)) for k, (p, e) in entries.items() if np.isfinite(p)}
    verdict = {k: "" for k in entries}
    if not valid:
        return verdict
    best = max(valid, key=lambda k: valid[k][0])
    p_best, e_best = valid[best]
    e_best = e_best if np.isfinite(e_best) else 0.0
    others = [p for k, (p, _) in valid.items() if k != best]
    if len(valid) >= min_entries and all(p_best - e_best > p for p in others):
        verdict[best] = "significant win"
        return verdict
    for k, (p, _) in valid.items():
        if p >= p_best - e_best:
            verdict[k] = "shared win"
    return verdict
