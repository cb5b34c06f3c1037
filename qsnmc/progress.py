"""Progress bars for long steps (fits, sweeps), quiet when asked.

Plugins call :func:`bar`; the harness sets ``QSNMC_PROGRESS=0`` for ``--quiet`` runs.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from tqdm import tqdm


def enabled() -> bool:
    """False when ``QSNMC_PROGRESS=0``."""
    return os.environ.get("QSNMC_PROGRESS", "1") != "0"


def bar(total: int | None = None, desc: str = "", **kwargs: Any) -> tqdm:
    """A tqdm progress bar on stderr, disabled when progress is switched off.

    Use ``bar.set_postfix(best_gamma=...)`` to show the best score so far.
    """
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not enabled(), leave=False, dynamic_ncols=True, **kwargs)


class SearchProgress:
    """A bar over the generations (or candidates) of a search, showing the best objective so far.

    Use as a context manager; call :meth:`step` once per generation, or pass :meth:`de_callback`
    as ``scipy.optimize.differential_evolution``'s ``callback`` (it reports ``-fun`` as best).
    """

    def __init__(self, total: int | None, desc: str) -> None:
        self._bar = bar(total=total, desc=desc)
        self.best: float | None = None

    def __enter__(self) -> "SearchProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.close()

    def step(self, best: float | None = None, n: int = 1) -> None:
        """Advance by ``n``; ``best`` is the best objective so far (shown if given)."""
        if best is not None:
            self.best = float(best)
            self._bar.set_postfix(best=f"{self.best:.4f}", refresh=False)
        self._bar.update(n)

    def de_callback(self, intermediate_result: Any) -> None:
        """``differential_evolution`` callback (the objective is minimised, so best = -fun)."""
        self.step(best=-float(intermediate_result.fun))
