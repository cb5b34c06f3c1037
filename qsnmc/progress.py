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
