"""The verdict across cells on hand-made rows: ranks, mean P, cells won, order, exact paired p-values."""
from __future__ import annotations

import pytest
from scipy import stats

from qsnmc.scoring.suite import format_suite_table, paired_test, smallest_p, suite_rows, suite_table

CELLS = ("c1", "c2", "c3", "c4", "c5")


def row(model: str, p: float | None, verdict: str = "", reason: str = "") -> dict:
    """A cell's ranking row as :func:`qsnmc.scoring.table.ranking_rows` writes it (P a fraction; None: failed)."""
    if p is None:
        return {"model": model, "status": "failed", "performance": None, "verdict": "failed", "reason": reason}
    return {"model": model, "status": "ok", "performance": p, "verdict": verdict, "reason": ""}


def five_cells() -> dict[str, list[dict]]:
    """a leads on every cell; b ties c on c2; c fails on c3; d wins c4 significantly."""
    p = {
        "a": [0.60, 0.50, 0.70, 0.40, 0.55],
        "b": [0.50, 0.30, 0.20, 0.10, 0.45],
        "c": [0.40, 0.30, None, 0.30, 0.35],
        "d": [0.10, 0.20, 0.30, 0.45, 0.10],
    }
    verdicts = {("a", "c1"): "significant win", ("a", "c3"): "significant win", ("d", "c4"): "significant win",
                ("a", "c2"): "shared win"}
    return {c: [row(m, ps[i], verdicts.get((m, c), ""), "fit: boom" if ps[i] is None else "")
                for m, ps in p.items()] for i, c in enumerate(CELLS)}


def test_ranks_mean_p_cells_won_and_order():
    table = suite_table(five_cells())
    rows = {r.model: r for r in table.rows}
    assert table.cells == CELLS and table.leader == "a"
    # order: scored on every cell first, by mean P; c (failed on c3) last though its mean P beats d's
    assert [r.model for r in table.rows] == ["a", "b", "d", "c"]
    # c2: a 0.5 first, b and c tie at 0.3 (ranks 2 and 3 -> 2.5 each), d 0.2 fourth
    assert rows["b"].ranks["c2"] == rows["c"].ranks["c2"] == 2.5 and rows["d"].ranks["c2"] == 4
    # c3: c failed -> below every scored model, rank 4
    assert rows["c"].ranks["c3"] == 4 and rows["c"].failed == {"c3": "fit: boom"}
    # c4: d 0.45 first, a 0.40, c 0.30, b 0.10
    assert [rows[m].ranks["c4"] for m in "dacb"] == [1, 2, 3, 4]
    assert rows["a"].mean_rank == pytest.approx((1 + 1 + 1 + 2 + 1) / 5)
    assert rows["c"].mean_rank == pytest.approx((3 + 2.5 + 4 + 3 + 3) / 5)
    assert rows["c"].mean_performance == pytest.approx((0.40 + 0.30 + 0.30 + 0.35) / 4) and rows["c"].n_scored == 4
    assert rows["a"].cells_won == ("c1", "c3") and rows["d"].cells_won == ("c4",) and rows["b"].cells_won == ()


def test_the_leader_is_tested_against_each_row_over_shared_cells_with_exact_p_values():
    rows = {r.model: r for r in suite_table(five_cells()).rows}
    assert rows["a"].test is None
    # a above b on all five cells: every sign flip but one is less extreme, two-sided p = 2 / 2^5
    b = rows["b"].test
    assert (b.n_cells, b.ahead, b.behind) == (5, 5, 0)
    assert b.p_wilcoxon == pytest.approx(0.0625) and b.p_sign == pytest.approx(0.0625) and b.min_p == 0.0625
    # against c only the four cells both were scored on: the best possible p is 2 / 2^4
    c = rows["c"].test
    assert (c.n_cells, c.ahead) == (4, 4) and c.p_wilcoxon == pytest.approx(0.125) and c.min_p == 0.125
    # against d: d ahead on c4 by 0.05, the smallest |d| of the five (rank 1): T- = 1,
    # P(T- <= 1) = 2/32 -> two-sided 0.125; sign test: 4 of 5 -> 2 * 6/32 = 0.375
    d = rows["d"].test
    assert (d.ahead, d.behind) == (4, 1)
    assert d.p_wilcoxon == pytest.approx(0.125) and d.p_sign == pytest.approx(0.375)
    assert d.mean_difference == pytest.approx((0.5 + 0.3 + 0.4 - 0.05 + 0.45) / 5)


def test_wilcoxon_is_exact_with_tied_differences_and_drops_zero_ones():
    # d = 0.25, 0.25, -0.25, 0.5, 0 (exact in binary): the zero is dropped, |d| 0.25 three times tie at rank 2,
    # 0.5 is rank 4; T- = 2; sign patterns with a negative rank sum <= 2: none negative, or one of the three
    # tied ones: 4 of 16, two-sided 0.5 (the table of untied ranks would say 0.375)
    test = paired_test([0.75, 0.5, 0.25, 1.0, 0.125], [0.5, 0.25, 0.5, 0.5, 0.125])
    assert (test.n_cells, test.n_nonzero, test.ahead, test.behind) == (5, 4, 3, 1)
    assert test.p_wilcoxon == pytest.approx(0.5) and test.p_sign == pytest.approx(0.625)
    untied = stats.wilcoxon([0.05, 0.10, -0.02, 0.30, 0.07], method="exact").pvalue
    assert paired_test([0.05, 0.10, -0.02, 0.30, 0.07], [0.0] * 5).p_wilcoxon == pytest.approx(untied) == 0.125
    same = paired_test([0.3, 0.4], [0.3, 0.4])
    assert same.n_nonzero == 0 and same.p_wilcoxon is None and same.p_sign is None


def test_smallest_attainable_p_and_the_text_say_how_weak_five_cells_are():
    assert [smallest_p(n) for n in (1, 2, 5, 6)] == [1.0, 0.5, 0.0625, 0.03125]
    text = format_suite_table(suite_table(five_cells()), "Suite")
    assert "with 5 cells the smallest attainable two-sided p is 0.0625, so no difference can reach p < 0.05" in text
    assert "Leader: a (highest mean P, scored on all 5 cells)" in text
    lines = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "| 60.0 * " in lines["a"] and "| failed " in lines["c"] and "c3: fit: boom" in lines["c"]
    assert "55.0" in lines["a"] and "(4/5)" not in lines["a"] and "(4/5)" in lines["c"]


def test_a_model_missing_from_a_cell_counts_as_failed_there_and_json_rows_hold_the_tests():
    cells = {"x": [row("m", 0.5), row("n", 0.4)], "y": [row("m", 0.3)]}
    table = suite_table(cells)
    rows = {r["model"]: r for r in suite_rows(table)}
    assert rows["n"]["failed"] == {"y": "not run"} and rows["n"]["ranks"]["y"] == 2
    assert rows["n"]["test"]["n_cells"] == 1 and rows["m"]["test"] is None and rows["n"]["n_scored"] == 1
