"""Suites on the command line: which challenges a ``qsnmc run`` covers (``--challenge LIST`` of names and
glob patterns, or ``--suite NAME``), and the across-cell table of a suite folder.

A LIST is comma-separated; each item is a challenge's name (``qsnmc list --challenges``) or a
shell-style pattern (``drn*``, ``drn15?``) standing for every challenge it matches, in name
order. A named suite is a declared list of challenges (:data:`SUITES`); the ones not imported
yet are named in the error.
"""
from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from qsnmc.challenges.datadir import EMBEDDED, available_challenges
from qsnmc.cli.checks import InputError, challenge_name
from qsnmc.harness.runstore import RUN
from qsnmc.harness.suite import SUITE, load_suite_records
from qsnmc.scoring.suite import SuiteTable, suite_table
from qsnmc.scoring.table import ranking_rows

#: the declared suites: name -> its challenges, in table order
SUITES: dict[str, tuple[str, ...]] = {
    "drn": ("drn156", "drn157", "drn159", "drn162", "drn165"),  # the five dorsal raphe cells of ../shared/drn
}

_PATTERN = set("*?[")


def suites_help() -> str:
    """The declared suites, for ``--help``: ``drn (drn156, drn157, ...)``."""
    return "; ".join(f"{name} ({', '.join(cells)})" for name, cells in SUITES.items())


def resolve_challenges(spec: str | None, suite: str | None) -> list[str]:
    """The run's challenges, in order: the suite's, else the LIST's (patterns expanded), else the embedded one.

    Raises:
        InputError: both given; an unknown suite; an empty item; a name that is not a challenge
            or a pattern that matches none (naming those that exist); a challenge named twice;
            a suite's challenge that is not imported.
    """
    known = available_challenges()
    listing = ", ".join(known) if known else "none"
    if suite is not None:
        if spec is not None:
            raise InputError("--suite and --challenge exclude each other: name a suite or list challenges")
        if suite not in SUITES:
            raise InputError(f"--suite {suite}: no such suite; suites: {suites_help()}")
        missing = [c for c in SUITES[suite] if c not in known]
        if missing:
            raise InputError(f"--suite {suite}: challenge{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                             f"not imported (challenges: {listing}); import them with qsnmc data (see docs/suites.md)")
        return list(SUITES[suite])
    names: list[str] = []
    for item in (spec or EMBEDDED).split(","):
        item = item.strip()
        if not item:
            raise InputError(f"--challenge {spec}: an empty item; expected names or patterns, comma-separated")
        if _PATTERN & set(item):
            matched = sorted(n for n in known if fnmatch.fnmatchcase(n, item))
            if not matched:
                raise InputError(f"--challenge {item}: matches no challenge; challenges: {listing}")
        else:
            challenge_name(item)
            matched = [item]
        names.extend(matched)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"--challenge {spec}: names {', '.join(repeated)} twice")
    return names


def suite_header(run_dir: Path) -> str:
    """The lines above an across-cell table: the suite, its cells with their R, seeds, budget, folder."""
    info = json.loads((Path(run_dir) / RUN).read_text())
    suite = info[SUITE]
    cells = []
    for cell in suite["challenges"]:
        path = Path(run_dir) / cell / RUN
        rel = json.loads(path.read_text()).get("reliability", {}) if path.is_file() else {}
        cells.append(f"{cell} (R {', '.join(f'{v:.3f}' for v in rel.values()) or '?'})")
    what = f"Suite {suite['name']!r}" if suite.get("name") else "Suite"
    settings = info["settings"]
    seeds = settings.get("seeds") or [settings["seed"]]
    return (f"{what} of {len(cells)} challenges: {', '.join(cells)}\n"
            f"Run started {info.get('started', '?')}, seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, seeds))}, budget {settings['budget']:g}; run folder {run_dir} "
            f"(one cell's table: qsnmc table {Path(run_dir).name}/CELL)")


def suite_of_run(run_dir: Path) -> tuple[SuiteTable, dict[str, list[dict[str, Any]]]]:
    """The across-cell table of a suite folder, and each cell's ranking rows."""
    cells = {c: ranking_rows(records) for c, records in load_suite_records(run_dir).items()}
    return suite_table(cells), cells
