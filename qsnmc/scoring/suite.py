"""The verdict across cells: P per model and cell, mean P, mean rank, cells won, and an exact
paired test of the leader against every other entry over the cells.

Input: each cell's ranking rows (:func:`qsnmc.scoring.table.ranking_rows`), so a cell's P (the
mean over its scored seeds) and its verdict (the competition's win rule, with the rule that an
empty or at-chance prediction never wins) are the single-challenge table's own.

Rules:

- **Rank per cell**: 1 for the highest P of the cell; equal P share the mean of their ranks; a
  model that failed on the cell (or was not run there) ranks below every scored one, all such
  models sharing the bottom ranks (:func:`scipy.stats.rankdata`, ``method="average"``).
- **Mean P**: over the cells the model was scored on. **Mean rank**: over every cell.
- **Order and leader**: models scored on every cell first, then by mean P (highest first); the
  first row is the leader.
- **Paired test**: for each other model, the differences d_c = P_leader,c − P_other,c over the
  cells where both were scored; two exact two-sided tests of "no difference": the Wilcoxon
  signed-rank test (its exact permutation distribution over the 2^n sign flips, correct with
  tied |d|; zero differences dropped) and the sign test (binomial, p = 1/2). With n non-zero
  differences no two-sided p can be below 2 / 2^n (0.0625 for five cells): a suite of five cells
  can never show a difference at p < 0.05, however large.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats
from tabulate import tabulate

#: the verdict of a cell's significant winner (:func:`qsnmc.scoring.metrics.decide_winner`)
SIGNIFICANT_WIN = "significant win"


@dataclass(frozen=True)
class PairedTest:
    """The leader against one other model over the cells where both were scored.

    Attributes:
        n_cells: cells where both were scored.
        n_nonzero: of those, cells where their P differ (the tests' n).
        ahead: cells where the leader's P is higher.
        behind: cells where it is lower.
        mean_difference: mean of P_leader − P_other over the ``n_cells`` (fraction of R).
        p_wilcoxon: exact two-sided p of the Wilcoxon signed-rank test (None when n_nonzero = 0).
        p_sign: exact two-sided p of the sign test (None when n_nonzero = 0).
        min_p: the smallest two-sided p either test can give with ``n_nonzero`` cells, 2 / 2^n (capped at 1).
    """

    n_cells: int
    n_nonzero: int
    ahead: int
    behind: int
    mean_difference: float | None
    p_wilcoxon: float | None
    p_sign: float | None
    min_p: float


@dataclass(frozen=True)
class SuiteRow:
    """One model across the cells.

    Attributes:
        model: its name.
        performance: per cell, P = Γ/R (fraction; the mean over the cell's scored seeds), None where it failed.
        ranks: per cell, its rank (1 = best; ties and failures share mean ranks).
        verdicts: per cell, the single-challenge verdict ("significant win", "shared win", ...).
        failed: per cell where it was not scored, why (the cell's reason, or "not run").
        mean_performance: mean P over the cells it was scored on (None: scored on none).
        mean_rank: mean of ``ranks`` over every cell.
        cells_won: the cells it won significantly.
        test: the leader's paired test against it (None for the leader itself).
    """

    model: str
    performance: dict[str, float | None]
    ranks: dict[str, float]
    verdicts: dict[str, str]
    failed: dict[str, str]
    mean_performance: float | None
    mean_rank: float
    cells_won: tuple[str, ...]
    test: PairedTest | None = None

    @property
    def n_scored(self) -> int:
        """How many cells it was scored on."""
        return sum(p is not None for p in self.performance.values())


@dataclass(frozen=True)
class SuiteTable:
    """The across-cell table: rows in order (leader first), the cells, and how weak the tests can be.

    Attributes:
        cells: the cells' names, in the suite's order.
        rows: one per model, leader first (see the module's rules).
        leader: the first row's model (None without a scored model).
        min_p: the smallest two-sided exact p attainable with every cell, 2 / 2^len(cells).
    """

    cells: tuple[str, ...]
    rows: tuple[SuiteRow, ...]
    leader: str | None
    min_p: float


def smallest_p(n: int) -> float:
    """The smallest two-sided p of an exact sign or signed-rank test over ``n`` non-zero differences: 2 / 2^n (≤ 1)."""
    return min(1.0, 2.0 / 2.0 ** n) if n > 0 else 1.0


def paired_test(leader: Sequence[float], other: Sequence[float]) -> PairedTest:
    """Exact two-sided Wilcoxon signed-rank and sign tests of P_leader − P_other over paired cells
    (equal-length sequences of P, fractions; the cells where both were scored)."""
    d = np.asarray(leader, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    nonzero = d[d != 0]
    ahead, behind = int(np.sum(nonzero > 0)), int(np.sum(nonzero < 0))
    p_wilcoxon = p_sign = None
    if nonzero.size:
        exact = stats.PermutationMethod(n_resamples=np.inf)  # every sign flip: exact, also with tied |d|
        # one difference: both signs are as extreme, p = 1 (scipy's permutation needs two)
        p_wilcoxon = 1.0 if nonzero.size == 1 else float(stats.wilcoxon(nonzero, method=exact).pvalue)
        p_sign = float(stats.binomtest(ahead, nonzero.size, 0.5).pvalue)
    return PairedTest(n_cells=int(d.size), n_nonzero=int(nonzero.size), ahead=ahead, behind=behind,
                      mean_difference=float(np.mean(d)) if d.size else None, p_wilcoxon=p_wilcoxon,
                      p_sign=p_sign, min_p=smallest_p(int(nonzero.size)))


def _cell_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float | None, str, str]]:
    """model -> (P or None, verdict, reason it failed) from one cell's ranking rows."""
    out = {}
    for r in rows:
        ok = r.get("status") == "ok" and r.get("performance") is not None and math.isfinite(r["performance"])
        out[r["model"]] = (float(r["performance"]) if ok else None, r.get("verdict", "") or "",
                           "" if ok else (r.get("reason") or "failed"))
    return out


def _cell_ranks(models: list[str], scores: dict[str, tuple[float | None, str, str]]) -> dict[str, float]:
    """Rank of each model on one cell: 1 = highest P, ties averaged, failed / absent ones share the bottom."""
    p = np.array([-np.inf if scores.get(m, (None,))[0] is None else scores[m][0] for m in models])
    return dict(zip(models, (float(x) for x in stats.rankdata(-p, method="average"))))


def suite_table(cells: Mapping[str, Sequence[Mapping[str, Any]]]) -> SuiteTable:
    """The across-cell table from each cell's ranking rows, ``{cell: rows}`` (cells in the suite's order).

    A model missing from a cell's rows counts as failed there ("not run").
    """
    names = tuple(cells)
    scores = {c: _cell_scores(rows) for c, rows in cells.items()}
    models = list(dict.fromkeys(r["model"] for rows in cells.values() for r in rows))
    ranks = {c: _cell_ranks(models, scores[c]) for c in names}
    rows = []
    for m in models:
        perf = {c: scores[c].get(m, (None, "", ""))[0] for c in names}
        known = [p for p in perf.values() if p is not None]
        rows.append(SuiteRow(
            model=m, performance=perf, ranks={c: ranks[c][m] for c in names},
            verdicts={c: scores[c].get(m, (None, "", ""))[1] for c in names},
            failed={c: (scores[c][m][2] if m in scores[c] else "not run") for c in names if perf[c] is None},
            mean_performance=float(np.mean(known)) if known else None,
            mean_rank=float(np.mean([ranks[c][m] for c in names])) if names else math.nan,
            cells_won=tuple(c for c in names if scores[c].get(m, (None, "", ""))[1] == SIGNIFICANT_WIN),
        ))
    rows.sort(key=lambda r: (r.mean_performance is None, r.n_scored < len(names),
                             -(r.mean_performance or 0.0), r.mean_rank, r.model))
    leader = rows[0] if rows and rows[0].mean_performance is not None else None
    if leader is not None:
        rows = [rows[0]] + [_with_test(leader, r, names) for r in rows[1:]]
    return SuiteTable(cells=names, rows=tuple(rows), leader=leader.model if leader else None,
                      min_p=smallest_p(len(names)))


def _with_test(leader: SuiteRow, row: SuiteRow, cells: Sequence[str]) -> SuiteRow:
    both = [c for c in cells if leader.performance[c] is not None and row.performance[c] is not None]
    test = paired_test([leader.performance[c] for c in both], [row.performance[c] for c in both])
    return replace(row, test=test)


def suite_rows(table: SuiteTable) -> list[dict[str, Any]]:
    """The table's rows as plain dicts (for ``--json``): every field of :class:`SuiteRow`, the
    paired test as a dict (None for the leader), and ``n_scored``."""
    return [{**asdict(r), "n_scored": r.n_scored} for r in table.rows]


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def _p(x: float | None) -> str:
    return "" if x is None else f"{x:.3g}"


def format_suite_table(table: SuiteTable, header: str = "") -> str:
    """The across-cell table as text: P % per cell (``*``: the cell's significant winner;
    ``failed`` where it was not scored), mean P %, mean rank, cells won, and the leader's exact
    paired tests against each row, then sentences naming the leader and how weak the tests are."""
    n = len(table.cells)
    display = []
    for r in table.rows:
        row: dict[str, Any] = {"model": r.model}
        for c in table.cells:
            p = r.performance[c]
            row[f"{c} P %"] = "failed" if p is None else _pct(p) + (" *" if c in r.cells_won else "")
        t = r.test
        row.update({
            "mean P %": _pct(r.mean_performance) + ("" if r.n_scored == n else f" ({r.n_scored}/{n})"),
            "mean rank": f"{r.mean_rank:.2f}",
            "cells won": f"{len(r.cells_won)}/{n}",
            "leader ahead/behind": "leader" if r.model == table.leader else ("" if t is None else
                                                                             f"{t.ahead}/{t.behind}"),
            "p Wilcoxon": "" if t is None else _p(t.p_wilcoxon),
            "p sign": "" if t is None else _p(t.p_sign),
            "notes": "; ".join(f"{c}: {why.splitlines()[0][:100] if why else 'failed'}" for c, why in r.failed.items()),
        })
        display.append(row)
    text = tabulate(display, headers="keys", tablefmt="github", disable_numparse=True) if display else "(no models)"
    return (header + "\n" if header else "") + text + "\n" + suite_note(table)


def suite_note(table: SuiteTable) -> str:
    """Sentences under the table: who leads and by which rule, what ``*`` marks, and the smallest
    attainable p with this many cells."""
    n = len(table.cells)
    if table.leader is None:
        return "No model was scored on any cell."
    leader = table.rows[0]
    scope = f"scored on all {n} cells" if leader.n_scored == n else f"scored on {leader.n_scored} of {n} cells"
    weak = (f"with {n} cells the smallest attainable two-sided p is {table.min_p:.3g}, so no difference can reach "
            f"p < 0.05 however large" if table.min_p >= 0.05 else
            f"with {n} cells the smallest attainable two-sided p is {table.min_p:.3g}")
    return (f"Leader: {table.leader} (highest mean P, {scope}). * marks a cell's significant winner (P - Err above "
            f"every other entry's P; an empty or at-chance prediction never wins). Mean rank: 1 = best; a failed "
            f"cell ranks last. Paired tests of the leader against each row over the cells where both were scored "
            f"(leader ahead/behind: cells), exact and two-sided (Wilcoxon signed-rank over every sign flip; sign "
            f"test): {weak}.")
