"""An entry whose prediction is empty or at chance is never named the winner, and the table says why."""
from __future__ import annotations

from qsnmc.scoring.metrics import decide_winner
from qsnmc.scoring.table import cannot_win, format_table, ranking_rows


def record(model: str, p: float, err: float, n_predicted: float = 50, seed: int = 0) -> dict:
    """A scored job record as the runner writes it (one test stimulus A with 50 recorded spikes per repetition)."""
    return {"model": model, "source": "built-in", "status": "ok", "performance": p, "error": err, "gamma": 0.8 * p,
            "seed": seed, "scores": [{"stimulus": "A", "n_predicted": n_predicted, "n_recorded": 50}],
            "fit_s": 1.0, "predict_s": 0.1, "cached": False, "sandboxed": True, "reason": ""}


def _rows(records: list[dict]) -> dict[str, dict]:
    return {r["model"]: r for r in ranking_rows(records)}


def test_an_empty_prediction_above_entries_below_zero_is_not_the_winner():
    records = [record("silent", 0.0, 0.0, n_predicted=0), record("arx", -0.05, 0.02), record("ddf", -0.10, 0.03)]
    # the competition's rule alone names the empty prediction (0 - 0 > -0.05): the case this rule is for
    assert decide_winner({"silent": (0.0, 0.0), "arx": (-0.05, 0.02), "ddf": (-0.1, 0.03)})["silent"] == \
        "significant win"
    rows = _rows(records)
    assert rows["silent"]["rank"] == 1 and rows["silent"]["verdict"] == ""
    assert rows["silent"]["cannot_win"] == "empty prediction: no spike predicted"
    assert rows["arx"]["cannot_win"].startswith("at chance") and rows["arx"]["verdict"] == ""
    text = format_table(ranking_rows(records))
    assert "significant win" not in text.split("\n")[-1] and "Winner" not in text
    assert "cannot win: empty prediction: no spike predicted" in text
    assert text.endswith("No winner: the best entry, silent, cannot win (empty prediction: no spike predicted): "
                         "an empty or at-chance prediction is never named the winner.")


def test_a_real_winner_still_wins_beside_an_empty_entry():
    rows = _rows([record("gif", 0.5, 0.03), record("lif", 0.2, 0.02), record("silent", 0.0, 0.0, n_predicted=0)])
    assert rows["gif"]["verdict"] == "significant win" and rows["gif"]["cannot_win"] == ""
    assert rows["silent"]["verdict"] == "" and rows["silent"]["cannot_win"].startswith("empty prediction")


def test_an_at_chance_leader_wins_nothing_and_no_entry_within_its_error_is_promoted():
    rows = _rows([record("noisy", 0.03, 0.05), record("close", 0.02, 0.005), record("low", -0.1, 0.01)])
    assert rows["noisy"]["cannot_win"] == ("at chance: P 3.0 % is not above 0 by more than its error 5.0 %")
    assert [rows[m]["verdict"] for m in ("noisy", "close", "low")] == ["", "", ""]
    assert rows["close"]["cannot_win"] == ""  # 2 % +- 0.5 % is above chance, yet within noisy's error of it


def test_a_lone_or_several_seed_entry_is_held_to_the_same_rule():
    assert _rows([record("silent", 0.0, 0.0, n_predicted=0)])["silent"]["verdict"] == ""
    seeds = [record("silent", 0.0, 0.0, n_predicted=0, seed=s) for s in (0, 1)] + \
        [record("lif", 0.3, 0.02, seed=s) for s in (0, 1)] + [record("mat", 0.2, 0.02, seed=s) for s in (0, 1)]
    rows = _rows(seeds)
    assert rows["silent"]["cannot_win"].startswith("empty") and rows["lif"]["verdict"] == "significant win"
    # one seed silent, one not: not empty; judged on its mean P and combined error
    mixed = cannot_win({"performance": 0.2, "error": 0.05, "spike_counts": {"A": {"predicted": 10, "recorded": 50}}})
    assert mixed == ""
    assert cannot_win({"performance": -0.01, "error": 0.0, "spike_counts": {}}).startswith("at chance")
