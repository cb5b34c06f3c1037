"""The official scoring rules against hand-computed cases."""
import numpy as np
import pytest

from qsnmc.scoring.metrics import (
    InvalidPrediction,
    bootstrap_error,
    coincidence_factor,
    decide_winner,
    intrinsic_reliability,
    n_coincidences,
    repetition_gammas,
)


def test_identical_trains_score_one():
    t = np.array([0.1, 0.5, 0.9, 1.7])
    assert coincidence_factor(t, t, duration=2.0) == pytest.approx(1.0)


def test_hand_computed_gamma():
    # 4 data spikes, 2 model spikes, 1 coincidence, T = 10 s, delta = 4 ms
    data = [1.0, 2.0, 3.0, 4.0]
    model = [2.003, 5.0]
    nu = 2 / 10.0
    expected = (1 - 2 * nu * 0.004 * 4) * 2 / ((4 + 2) * (1 - 2 * nu * 0.004))
    assert coincidence_factor(data, model, 0.004, duration=10.0) == pytest.approx(expected)


def test_independent_poisson_is_near_zero():
    rng = np.random.default_rng(0)
    gammas = []
    for _ in range(20):
        a = np.sort(rng.uniform(0, 100, 1000))
        b = np.sort(rng.uniform(0, 100, 1000))
        gammas.append(coincidence_factor(a, b, duration=100.0))
    assert abs(np.mean(gammas)) < 0.02


def test_delta_edges_inclusive():
    assert n_coincidences([1.0], [1.004], 0.004) == 1  # exactly delta apart counts
    assert n_coincidences([1.0], [0.996], 0.004) == 1
    assert n_coincidences([1.0], [1.0041], 0.004) == 0
    assert n_coincidences([1.0], [1.0021], 0.002) == 0


def test_empty_trains():
    assert coincidence_factor([1.0, 2.0], [], duration=5.0) == 0.0
    assert coincidence_factor([], [], duration=5.0) == 0.0
    assert coincidence_factor([], [1.0], duration=5.0) == 0.0


def test_without_replacement_in_bursts():
    # one data spike and two model spikes inside its window: only one coincidence
    assert n_coincidences([1.0], [0.999, 1.001], 0.004) == 1
    # two data spikes, one model spike between them: one coincidence, not two
    assert n_coincidences([1.000, 1.006], [1.003], 0.004) == 1
    # greedy-by-nearest would match d1 to m2 and lose a pair; the maximum is 2
    assert n_coincidences([1.000, 1.005], [1.004, 1.008], 0.004) == 2
    # a burst of 3 against 3 shifted spikes: 3 disjoint pairs
    assert n_coincidences([1.000, 1.003, 1.006], [1.002, 1.005, 1.008], 0.004) == 3


def test_count_matches_simple_rule_when_isis_exceed_two_delta():
    rng = np.random.default_rng(3)
    data = np.cumsum(rng.uniform(0.009, 0.1, 300))
    model = np.sort(data + rng.normal(0, 0.004, data.size))
    model = model[np.concatenate([[True], np.diff(model) > 0.009])]
    simple = sum(np.any(np.abs(model - t) <= 0.004) for t in data)
    assert n_coincidences(data, model, 0.004) == simple


def test_rate_too_high_is_invalid():
    with pytest.raises(InvalidPrediction):
        coincidence_factor([0.5], np.linspace(0, 1, 200), 0.004, duration=1.0)  # 2*200*0.004 = 1.6


def test_gamma_can_be_negative():
    data = np.arange(0.05, 10, 0.1)
    model = data + 0.05  # always between data spikes
    assert coincidence_factor(data, model, duration=10.0) < 0


def test_reliability_averages_both_directions():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.001, 2.5])
    both = 0.5 * (coincidence_factor(a, b, duration=4.0) + coincidence_factor(b, a, duration=4.0))
    assert intrinsic_reliability([a, b], duration=4.0) == pytest.approx(both)


def test_deterministic_prediction_is_compared_with_every_repetition():
    recs = [np.array([1.0, 2.0]), np.array([1.0, 3.0])]
    g = repetition_gammas(recs, np.array([1.0, 2.0]), duration=4.0)
    assert g.shape == (2,) and g[0] == pytest.approx(1.0) and g[1] < 1.0


def test_bootstrap_error_is_deterministic_and_sensible():
    vals = np.array([0.7, 0.8, 0.75, 0.72, 0.9, 0.65, 0.8, 0.77, 0.81, 0.7, 0.69, 0.74, 0.78])
    e1, e2 = bootstrap_error(vals), bootstrap_error(vals)
    assert e1 == e2
    # close to the standard error of the mean
    assert e1 == pytest.approx(vals.std(ddof=0) / np.sqrt(vals.size), rel=0.05)
    assert bootstrap_error(vals, seed=1) != e1


def test_significant_win_needs_one_error_above_all_and_three_entries():
    entries = {"a": (0.80, 0.02), "b": (0.70, 0.03), "c": (0.10, 0.05)}
    assert decide_winner(entries) == {"a": "significant win", "b": "", "c": ""}
    # only two entries: no significant win, shared by those within Err(best)
    two = {"a": (0.80, 0.02), "b": (0.70, 0.03)}
    assert decide_winner(two) == {"a": "shared win", "b": ""}


def test_shared_win_when_within_error():
    entries = {"a": (0.80, 0.05), "b": (0.77, 0.03), "c": (0.50, 0.02)}
    assert decide_winner(entries) == {"a": "shared win", "b": "shared win", "c": ""}


def test_failed_entries_take_no_part():
    entries = {"a": (0.8, 0.01), "b": (0.5, 0.01), "c": (0.4, 0.01), "x": (float("nan"), float("nan"))}
    v = decide_winner(entries)
    assert v["a"] == "significant win" and v["x"] == ""


def test_the_greedy_count_is_the_maximum_matching_of_scipys_hopcroft_karp():
    """n_coincidences (greedy: each data spike takes the earliest free model spike of its window)
    equals the maximum bipartite matching over every pair within delta, on trains dense enough
    that windows overlap and share spikes (bursts, jitter, ties at exactly delta)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    def hopcroft_karp(d, m, delta):
        rows, cols = np.nonzero(np.abs(d[:, None] - m[None, :]) <= delta + 1e-9)
        if rows.size == 0:
            return 0
        graph = csr_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(d.size, m.size))
        return int(np.count_nonzero(maximum_bipartite_matching(graph, perm_type="column") >= 0))

    rng = np.random.default_rng(7)
    n_harder = 0
    for trial in range(400):
        n_d, n_m = rng.integers(0, 30, 2)
        span = rng.choice([0.05, 0.2, 1.0])
        d = np.sort(rng.uniform(0, span, n_d))
        if trial % 2:  # model spikes near data spikes, some on a 1 ms grid (exact ties)
            m = np.sort(np.round(np.concatenate([d[: n_m] + rng.normal(0, 0.003, min(n_m, n_d)),
                                                 rng.uniform(0, span, max(0, n_m - n_d))]), 3))
        else:
            m = np.sort(rng.uniform(0, span, n_m))
        expected = hopcroft_karp(d, m, 0.004)
        n_harder += expected < min(d.size, m.size)
        assert n_coincidences(d, m, 0.004) == expected, (d, m)
    assert n_harder > 50  # many cases where not every spike can be matched
