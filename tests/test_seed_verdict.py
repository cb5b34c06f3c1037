"""The verdict over seeds on hand-made rows: the seed spread, not only the bootstrap, decides a win;
one seed is the competition's rule; failed seeds are counted and named; the wording of the verdict
for one, two and more entries."""
from __future__ import annotations

import math

import numpy as np
import pytest

from qsnmc.scoring.metrics import decide_winner
from qsnmc.scoring.seeds import decide_winner_over_seeds, summarise_seeds
from qsnmc.scoring.table import format_table, ranking_rows, verdict_note


def _record(model: str, seed: int, p: float | None, err: float = 0.01, reason: str = "") -> dict:
    ok = p is not None
    return {"model": model, "seed": seed, "status": "ok" if ok else "failed", "performance": p,
            "error": err if ok else None, "gamma": None if p is None else 0.76 * p, "reason": reason,
            "fit_s": 1.0, "predict_s": 0.1, "cached": False, "sandboxed": True,
            "scores": [{"stimulus": "A", "n_predicted": 100.0 + seed, "n_recorded": 110.0}] if ok else []}


def test_combined_error_joins_the_bootstrap_and_the_seed_spread():
    s = summarise_seeds([0.80, 0.86, 0.83], [0.010, 0.012, 0.011])
    assert s.performance == pytest.approx(0.83)
    assert s.seed_sd == pytest.approx(0.03)  # sample SD (ddof = 1)
    assert s.bootstrap_error == pytest.approx(math.sqrt((0.010**2 + 0.012**2 + 0.011**2) / 3))
    assert s.error == pytest.approx(math.sqrt(s.bootstrap_error**2 + 0.03**2))
    assert s.n_seeds == 3


def test_a_lead_smaller_than_the_seed_spread_is_not_a_significant_win():
    # a leads by 0.04 = four bootstrap errors: a win by the competition's rule on one seed...
    assert decide_winner({"a": (0.80, 0.01), "b": (0.76, 0.01), "c": (0.50, 0.01)})["a"] == "significant win"
    # ...but a's seeds spread by SD 0.05 > 0.04: over seeds the win is shared with b
    seeds = {"a": [(0.75, 0.01), (0.80, 0.01), (0.85, 0.01)],
             "b": [(0.76, 0.01), (0.76, 0.01), (0.76, 0.01)],
             "c": [(0.50, 0.01)] * 3}
    assert decide_winner_over_seeds(seeds) == {"a": "shared win", "b": "shared win", "c": ""}


def test_a_lead_larger_than_the_seed_spread_is_a_significant_win():
    seeds = {"a": [(0.83, 0.01), (0.85, 0.01), (0.87, 0.01)],  # mean 0.85, SD 0.02, Err_c 0.022
             "b": [(0.76, 0.01), (0.78, 0.01), (0.77, 0.01)],
             "c": [(0.50, 0.01)] * 3}
    assert decide_winner_over_seeds(seeds) == {"a": "significant win", "b": "", "c": ""}


def test_an_entry_with_one_scored_seed_of_several_cannot_win_significantly():
    # a leads by far on its one scored seed, but its seed spread is unknown: the win is shared
    seeds = {"a": [(0.90, 0.01)], "b": [(0.60, 0.01)] * 3, "c": [(0.50, 0.01)] * 3}
    assert decide_winner_over_seeds(seeds) == {"a": "significant win", "b": "", "c": ""}  # one seed was run
    assert decide_winner_over_seeds(seeds, n_run={"a": 3, "b": 3, "c": 3}) == {"a": "shared win", "b": "", "c": ""}
    records = [_record("a", 0, 0.90), *(_record("a", s, None, reason="fit: boom") for s in (1, 2)),
               *(_record(m, s, p) for m, p in (("b", 0.6), ("c", 0.5)) for s in range(3))]
    rows = ranking_rows(records)
    assert rows[0]["model"] == "a" and rows[0]["verdict"] == "ahead, not significant"
    assert verdict_note(rows) == ("No significant winner: a leads by more than its error, but was scored on "
                                  "1 seed of 3, so its seed spread is unknown.")
    # two scored seeds of three measure a spread: a lead beyond Err_c still wins
    seeds["a"] = [(0.90, 0.01), (0.91, 0.01)]
    assert decide_winner_over_seeds(seeds, n_run={"a": 3, "b": 3, "c": 3})["a"] == "significant win"


def test_one_seed_is_exactly_the_competitions_rule():
    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(1, 6))
        entries = {f"m{i}": (float(rng.uniform(0, 1)), float(rng.uniform(0, 0.1))) for i in range(n)}
        assert decide_winner_over_seeds({k: [v] for k, v in entries.items()}) == decide_winner(entries)
        s = summarise_seeds([entries["m0"][0]], [entries["m0"][1]])
        assert (s.performance, s.error, s.seed_sd) == (entries["m0"][0], entries["m0"][1], 0.0)


def test_single_seed_rows_keep_the_competitions_numbers():
    records = [_record("a", 0, 0.70, 0.013), _record("b", 0, 0.60, 0.02), _record("c", 0, None, reason="fit: boom"),
               _record("d", 0, 0.30, 0.01)]
    rows = {r["model"]: r for r in ranking_rows(records)}
    assert rows["a"]["performance"] == 0.70 and rows["a"]["error"] == 0.013 and rows["a"]["seed_sd"] == 0.0
    assert rows["a"]["gamma"] == 0.76 * 0.70 and rows["a"]["verdict"] == "significant win"
    assert rows["c"]["verdict"] == "failed" and rows["c"]["reason"] == "fit: boom"
    text = format_table(list(rows.values()))
    assert "seed SD" not in text and "P per seed" not in text  # the single-seed table's columns


def test_a_failed_seed_is_counted_and_named():
    records = [_record("a", 0, 0.80), _record("a", 1, None, reason="fit: ValueError: bad seed"),
               _record("a", 2, 0.84), _record("b", 0, 0.5), _record("b", 1, 0.5), _record("b", 2, 0.5),
               *(_record("c", s, None, reason=f"timed out after 1 s") for s in range(3))]
    rows = {r["model"]: r for r in ranking_rows(records)}
    a = rows["a"]
    assert (a["n_seeds"], a["n_scored"], a["status"]) == (3, 2, "ok")
    assert a["performance"] == pytest.approx(0.82) and a["seed_sd"] == pytest.approx(np.std([0.80, 0.84], ddof=1))
    assert a["reason"] == "seed 1: fit: ValueError: bad seed"
    assert [s["status"] for s in a["seeds"]] == ["ok", "failed", "ok"]
    assert a["spike_counts"]["A"]["predicted"] == pytest.approx(101.0)  # mean over the scored seeds 0 and 2
    c = rows["c"]
    assert c["status"] == "failed" and c["verdict"] == "failed" and c["rank"] is None
    assert c["reason"].startswith("all 3 seeds failed; seed 0: timed out")
    text = format_table(list(rows.values()))
    line_a = next(line for line in text.splitlines() if "| a " in line)
    assert "2/3" in line_a and "80.0 · failed · 84.0" in line_a and "seed 1: fit: ValueError: bad seed" in line_a
    line_c = next(line for line in text.splitlines() if "| c " in line)
    assert "0/3" in line_c and "all 3 seeds failed" in line_c


def _rows(spec: dict[str, list[tuple[float, float]]]) -> list[dict]:
    return ranking_rows([_record(m, s, p, e) for m, seeds in spec.items() for s, (p, e) in enumerate(seeds)])


def test_the_verdict_reads_right_for_one_entry():
    rows = _rows({"mymodel": [(0.5, 0.01)]})
    assert rows[0]["verdict"] == "only entry"
    assert verdict_note(rows) == "One entry (mymodel): no ranking verdict (the win rule needs at least 3 entries)."


def test_the_verdict_reads_right_for_two_entries():
    close = _rows({"a": [(0.50, 0.02)], "b": [(0.49, 0.01)]})
    assert [r["verdict"] for r in close] == ["shared win", "shared win"]
    assert verdict_note(close) == ("Two entries, so no significant winner (the win rule needs at least 3): "
                                   "a and b are within a's error of each other.")
    apart = _rows({"a": [(0.70, 0.01)], "b": [(0.50, 0.01)]})
    assert [r["verdict"] for r in apart] == ["ahead, not significant", ""]
    assert verdict_note(apart) == ("Two entries, so no significant winner (the win rule needs at least 3): "
                                   "a is ahead of b by more than its error.")


def test_the_verdict_reads_right_for_three_entries_and_over_seeds():
    shared = _rows({"a": [(0.50, 0.02)], "b": [(0.49, 0.01)], "c": [(0.485, 0.01)], "d": [(0.1, 0.01)]})
    assert verdict_note(shared) == ("No significant winner (no entry is one error above all others): "
                                    "the win is shared by a, b and c.")
    won = _rows({"a": [(0.70, 0.01)], "b": [(0.50, 0.01)], "c": [(0.4, 0.01)]})
    assert verdict_note(won) == "Winner: a (P - Err above every other entry's P; 3 entries)."
    won = _rows({"a": [(0.70, 0.01), (0.72, 0.01)], "b": [(0.50, 0.01)] * 2, "c": [(0.4, 0.01)] * 2})
    assert verdict_note(won) == ("Winner: a (its mean P over seeds minus Err_c is above every other entry's "
                                 "mean P; 3 entries).")
    assert verdict_note(_rows({})) == "No entry could be scored."
