"""Checks of a command's whole input before any work starts, and the commands' exit statuses.

Every check raises :class:`InputError` with one line naming what is wrong and what is valid;
the command prints it after its own name and exits with :data:`EXIT_USAGE`. Checks that need
no plugin code (numbers, paths, challenge names) run before discovery; model names and
``--param`` settings are checked against discovery's report, before any worker starts or
any run folder is made.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from qsnmc.challenges.datadir import available_challenges, challenges_dir
from qsnmc.harness.discovery import ModelEntry
from qsnmc.settings import SettingsError, check_overrides

#: exit statuses of ``qsnmc run`` and ``qsnmc sweep`` (``data`` commands use 0, 1 and 2)
EXIT_OK = 0  # every row scored (data: the challenge was written)
EXIT_SOME_FAILED = 1  # some rows failed, the others are scored (data: writing failed)
EXIT_USAGE = 2  # usage or input error: nothing was started (argparse's own errors use 2 too)
EXIT_NONE_SCORED = 3  # no row could be scored

EXIT_STATUSES = (
    "Exit status: 0 every row scored; 1 some rows failed, the others scored; 2 usage or input error "
    "(nothing started); 3 no row could be scored"
)

#: the folder of drop-in submissions when --submissions is not given (a missing one means none)
SUBMISSIONS = "submissions"


class InputError(ValueError):
    """A command's input that cannot be used; the message is one line naming what is valid."""


class DefaultPath(str):
    """An option's default path, told apart from the same path given by the user."""


def given(value: Any) -> bool:
    """Whether an option's value came from the command line rather than its :class:`DefaultPath` default."""
    return not isinstance(value, DefaultPath)


def number(flag: str, value: float, *, low: float | None = None, high: float | None = None,
           low_open: bool = True, high_open: bool = True, what: str = "") -> float:
    """``value`` if finite and inside the bounds (open or closed ends), else :class:`InputError`."""
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    if low is not None and high is not None:
        valid = f"a number in {lo}, {hi}"
    elif low is not None:
        valid = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        valid = f"a number {'<' if high_open else '<='} {high:g}"
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise InputError(f"{flag} {value:g}: expected {valid}" + (f" ({what})" if what else ""))
    return value


def execution_numbers(args: Any) -> None:
    """``--budget``, ``--timeout`` and ``--memory-limit`` of ``run`` and ``sweep``: each greater than 0."""
    number("--budget", args.budget, low=0, what="compute scale, 1 = each model's default fit")
    number("--timeout", args.timeout, low=0, what="seconds per model")
    number("--memory-limit", args.memory_limit, low=0, what="MB per model")


def sweep_numbers(args: Any) -> None:
    """``--holdout`` in (0, 1) and ``--r-floor`` in [0, 1] of ``sweep``."""
    number("--holdout", args.holdout, low=0, high=1, what="fraction of each training window held out")
    number("--r-floor", args.r_floor, low=0, high=1, low_open=False, high_open=False,
           what="least reliability R of a scored held-out part")


def challenge_name(name: str) -> None:
    """A challenge that exists (the embedded one or an imported one), else the list of those that do."""
    names = available_challenges()
    if name not in names:
        known = ", ".join(names) if names else "none"
        raise InputError(f"--challenge {name}: no such challenge (looked in {challenges_dir()}); "
                         f"challenges: {known} (import one with qsnmc data)")


def submissions_dir(value: str) -> None:
    """``--submissions DIR`` given on the command line must be a folder (the default may be absent)."""
    path = Path(value)
    if given(value) and not path.is_dir():
        why = "is not a folder" if path.exists() else "does not exist"
        raise InputError(f"--submissions {value}: {why}; expected a folder of drop-in model files (*.py)")


def runs_dir(value: str) -> None:
    """``--runs-dir DIR``: a writable folder, or one that can be made inside a writable folder."""
    path = Path(value).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise InputError(f"--runs-dir {value}: is a file, not a folder; expected a folder to write runs into")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"--runs-dir {value}: {existing} is a file, not a folder; "
                         "expected a folder to write runs into")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"--runs-dir {value}: {existing} is not writable; expected a folder to write runs into")


def select_models(names: Sequence[str], entries: Iterable[ModelEntry]) -> list[ModelEntry]:
    """The entries of ``names`` in that order; an unknown name lists every known one."""
    known = {e.name: e for e in entries}
    missing = [m for m in names if m not in known]
    if missing:
        raise InputError(f"unknown model(s) {', '.join(missing)}; known: {', '.join(sorted(known))}")
    return [known[m] for m in names]


def model_params(entry: ModelEntry, params: dict[str, Any]) -> dict[str, Any]:
    """``--param`` settings checked against the model's declared settings and converted to their types.

    A model whose constructor takes arbitrary keywords (schema None) gets them unchecked.
    A model whose source failed (import error, name clash) is left to fail as its row.
    """
    if not params or entry.settings is None or entry.error:
        return dict(params)
    try:
        return check_overrides(entry.settings, params, entry.name)
    except SettingsError as exc:
        raise InputError(f"--param: {exc}") from None


def new_model_name(name: str, entries: Iterable[ModelEntry]) -> None:
    """A name for ``qsnmc new`` that no discovered model (built-in, installed or submission) has."""
    for e in entries:
        if e.name == name:
            raise InputError(f"{name!r} is already the name of a model ({e.source.label}); choose another name "
                             "(qsnmc list shows the names in use)")


def run_status(records: Iterable[dict[str, Any]]) -> int:
    """The exit status of finished rows: :data:`EXIT_OK`, :data:`EXIT_SOME_FAILED` or :data:`EXIT_NONE_SCORED`."""
    statuses = [r["status"] for r in records]
    scored = sum(s == "ok" for s in statuses)
    if statuses and scored == len(statuses):
        return EXIT_OK
    return EXIT_SOME_FAILED if scored else EXIT_NONE_SCORED


def sweep_split(split: str, challenge: Any) -> None:
    """``--split stimulus`` needs two or more training stimuli; with one, ``--split time`` is the way."""
    n = sum(s.train_window_s is not None for s in challenge.stimuli)
    if split == "stimulus" and n < 2:
        raise InputError(f"--split stimulus leaves each training stimulus out in turn and needs at least 2; "
                         f"challenge {challenge.name!r} has {n}: use --split time")


#: how long ``--scheduler`` may take to accept a connection before the run is refused (s)
SCHEDULER_CONNECT_S = 3.0


def scheduler(executor: str, address: str | None) -> None:
    """``--scheduler tcp://HOST:PORT`` of ``--executor dask``: well formed, and something listens there.

    Only the TCP connection is tried (for at most :data:`SCHEDULER_CONNECT_S`); a scheduler that
    accepts it and then fails is the run's business.
    """
    import socket
    from urllib.parse import urlsplit

    if address is None:
        return
    if executor != "dask":
        raise InputError(f"--scheduler {address}: goes with --executor dask")
    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if parts.scheme != "tcp" or not host or not port:
        raise InputError(f"--scheduler {address}: expected tcp://HOST:PORT (e.g. tcp://127.0.0.1:8786)")
    try:
        socket.create_connection((host, port), timeout=SCHEDULER_CONNECT_S).close()
    except OSError as exc:
        why = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc)).lower()
        raise InputError(f"--scheduler {address}: no Dask scheduler answers there ({why}); start one with "
                         "`dask scheduler`, or leave --scheduler out for a LocalCluster of --jobs workers") from None
