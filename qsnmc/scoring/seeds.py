"""The verdict over several seeds: each entry's seed mean, seed spread and combined error, ranked
by the competition's win rule (:func:`qsnmc.scoring.metrics.decide_winner`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from qsnmc.scoring.metrics import decide_winner


@dataclass(frozen=True)
class SeedSummary:
    """One entry's scores over the seeds that succeeded (fractions of R, not %).

    Attributes:
        performance: mean P over the seeds.
        seed_sd: sample SD of P over the seeds (ddof = 1; 0 for one seed).
        bootstrap_error: root mean square of the seeds' bootstrap errors Err_s.
        error: the combined error Err_c = sqrt(mean_s Err_s^2 + SD^2).
        n_seeds: how many seeds it is over.
    """

    performance: float
    seed_sd: float
    bootstrap_error: float
    error: float
    n_seeds: int


def summarise_seeds(performances: Sequence[float], errors: Sequence[float]) -> SeedSummary:
    """Mean P, seed SD and combined error over the seeds of one entry (see :func:`decide_winner_over_seeds`).

    With one seed: P, 0, Err and Err exactly (no arithmetic on them), so a single-seed table
    is the competition's.

    Raises:
        ValueError: no seed, or unequal lengths.
    """
    if not performances or len(performances) != len(errors):
        raise ValueError(f"need one error per seed and at least one seed, got {len(performances)} P and "
                         f"{len(errors)} errors")
    if len(performances) == 1:
        p, e = float(performances[0]), float(errors[0])
        return SeedSummary(p, 0.0, e, e, 1)
    ps = np.asarray(performances, dtype=np.float64)
    es = np.asarray(errors, dtype=np.float64)
    sd = float(np.std(ps, ddof=1))
    boot = float(np.sqrt(np.mean(es ** 2)))
    return SeedSummary(float(np.mean(ps)), sd, boot, math.hypot(boot, sd), len(ps))


def decide_winner_over_seeds(entries: Mapping[str, Sequence[tuple[float, float]]], min_entries: int = 3,
                             n_run: Mapping[str, int] | None = None) -> dict[str, str]:
    """The verdict for each entry from its scored seeds, ``{name: [(P_s, Err_s), ...]}``.

    Rules (P_s: the seed's performance Γ/R, Err_s: its bootstrap error, both by the 2009 rules):

    - An entry's score is its mean over the n seeds that were scored, P = (1/n) Σ_s P_s, and its
      error is the combined error Err_c = sqrt((1/n) Σ_s Err_s² + SD²), with SD the sample
      standard deviation of the P_s (n − 1 in the denominator; SD = 0 when n = 1).
      Failed seeds take no part; an entry with no scored seed takes no part and gets ``""``.
    - The competition's rule (:func:`qsnmc.scoring.metrics.decide_winner`) is then applied to
      the pairs (P, Err_c): entry j wins *significantly* iff P(j) − Err_c(j) > P(i) for every other
      entry i, and only with at least ``min_entries`` (3) entries; otherwise the win is *shared* by
      every entry i with P(i) ≥ P(best) − Err_c(best), best being the entry with the highest P.
    - With one seed per entry, P = P_s and Err_c = Err_s: the competition's rule unchanged.
    - An entry scored on one seed only, of the ``n_run[name]`` > 1 that were run (the others
      failed), has no measured seed spread, so its Err_c is too small: it cannot win
      significantly. When it leads, the win is shared by every entry i with
      P(i) ≥ P(best) − Err_c(best).

    Why this error. The bootstrap part: every seed is scored on the same recorded repetitions,
    so the seeds' bootstrap errors are correlated, not independent, and averaging seeds does
    not shrink them; their root mean square is the one value (Err itself when all are equal).
    The seed part is the SD, not the standard error SD/√n of the mean, for two reasons: an
    entry is a fitting procedure that a user runs with one seed, so its lead should exceed what
    a reseed moves it by; and with the 2-3 seeds a table affords, the SD is estimated on 1-2
    degrees of freedom, where ±SD/√n covers the expected P in only about 58 % of cases
    (Student's t, 2 dof) and ±SD in about 78 % for n = 3, close to the 68 % that one bootstrap
    error stands for in the competition's rule.

    Returns:
        ``{name: "significant win" | "shared win" | ""}``.
    """
    summaries = {k: summarise_seeds([p for p, _ in v], [e for _, e in v]) for k, v in entries.items() if v}
    pairs = {k: (s.performance, s.error) for k, s in summaries.items()}
    verdict = decide_winner(pairs, min_entries)
    winner = next((k for k, v in verdict.items() if v == "significant win"), None)
    if winner is not None and summaries[winner].n_seeds == 1 and (n_run or {}).get(winner, 1) > 1:
        verdict = decide_winner(pairs, min_entries=len(pairs) + 1)  # too few entries to win: the shared-win rule
    return {k: verdict.get(k, "") for k in entries}
