"""The ``qsnmc data`` command group: import the competitions' real-cell recordings.

``qsnmc data import-qsnmc2007 DIR`` and ``qsnmc data import-qsnmc2009 DIR`` write a
challenge into the user's data folder (:func:`qsnmc.challenges.datadir.challenges_dir`) and print
its summary: stimuli, repetitions, windows, spike counts, R per test stimulus, Delta.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from qsnmc.challenges.datadir import EMBEDDED, challenges_dir
from qsnmc.challenges.textdata import CURRENT_UNITS, DataImportError

if TYPE_CHECKING:
    from qsnmc.challenges.store import Challenge

#: the manifest file that marks a challenge folder (see :mod:`qsnmc.challenges.store`)
MANIFEST = "manifest.json"


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``data`` command group (its import subcommands) to an argparse subparsers object.

    Every subcommand sets ``func``: a callable taking the parsed arguments and returning
    an exit code (0 imported, 1 refused or failed, 2 usage).
    """
    data = subparsers.add_parser("data", help="import real-cell recordings as challenges")
    data.set_defaults(func=lambda args: _usage(data))
    commands = data.add_subparsers(title="data commands", metavar="COMMAND")

    p07 = commands.add_parser(
        "import-qsnmc2007",
        help="import the QSNMC 2007 Challenge A recordings (training/; test/ holds model-made spikes, not read)",
        description="Import the recorded stimuli of a QSNMC 2007 Challenge A folder (training/NN-r.voltage and "
        "NN-r.spiketimes, plain or .gz) into <data dir>/challenges/NAME, in the 2009 design: train on "
        "0..TRAIN_UNTIL s of every stimulus, test on TRAIN_UNTIL s..end of every stimulus whose R there is at "
        "least R_FLOOR. test/ is not read (its spike times come from the organisers' aEIF model). Delta = 2 ms.",
    )
    p07.add_argument("dir", type=Path, metavar="DIR", help="folder holding training/ (or challengeA/)")
    p07.add_argument("--name", default="qsnmc2007a", help="challenge name (default: %(default)s)")
    p07.add_argument(
        "--train-until", type=float, default=22.0, metavar="SECONDS",
        help="end of the training window and start of the test window, which runs to the end of the "
        "recording (default: %(default)g)",
    )
    p07.add_argument(
        "--r-floor", type=float, default=0.3, metavar="R",
        help="test a stimulus only if its intrinsic reliability in the test window is at least R; "
        "the others are training-only (default: %(default)g)",
    )
    _common_options(p07)
    p07.set_defaults(func=_run_2007)

    p09 = commands.add_parser(
        "import-qsnmc2009",
        help="import QSNMC 2009 Challenge A/B files (current.txt, voltage_allrep.txt) on a substitute split",
        description="Import QSNMC 2009 Challenge A or B (current.txt, voltage_allrep.txt) into "
        "<data dir>/challenges/NAME. The competition's test window was never published: the challenge "
        "is scored on a substitute split inside the recorded voltage. Delta = 4 ms.",
    )
    p09.add_argument("dir", type=Path, metavar="DIR", help="folder holding current.txt and voltage_allrep.txt")
    p09.add_argument("--challenge", choices=["A", "B"], default="A", help="which challenge (default: %(default)s)")
    p09.add_argument("--name", default=None, help="challenge name (default: qsnmc2009a or qsnmc2009b)")
    p09.add_argument(
        "--train-window", nargs=2, type=float, default=(0.0, 30.0), metavar=("START", "STOP"),
        help="training window in s (default: 0 30)",
    )
    p09.add_argument(
        "--test-window", nargs=2, type=float, default=(30.0, 38.0), metavar=("START", "STOP"),
        help="substitute test window in s, inside the recorded voltage (default: 30 38)",
    )
    _common_options(p09)
    p09.set_defaults(func=_run_2009)
    return data


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--current-unit", choices=sorted(CURRENT_UNITS), default=None,
        help="unit of the current in the files (default: pA, refused if the amplitude is implausible)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing challenge of that name")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _destination(name: str, force: bool) -> Path | None:
    """The folder to write, or None (after printing why) if it must not be written."""
    if name == EMBEDDED or not name or Path(name).name != name or name.startswith("."):
        print(f"error: {name!r} is not a usable challenge name", file=sys.stderr)
        return None
    dest = challenges_dir() / name
    if dest.exists():
        if not (dest / MANIFEST).is_file():
            print(f"error: {dest} exists and is not a challenge folder; not touching it", file=sys.stderr)
            return None
        if not force:
            print(f"error: challenge {name!r} already exists at {dest}; use --force to replace it", file=sys.stderr)
            return None
    return dest


def _run_import(args: argparse.Namespace, name: str, do_import: Callable[[Path], Path]) -> int:
    from qsnmc.challenges.store import ChallengeError, load_challenge

    dest = _destination(name, args.force)
    if dest is None:
        return 1
    try:
        folder = do_import(dest)
        challenge = load_challenge(folder)
    except (DataImportError, ChallengeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary(challenge))
    return 0


def _run_2007(args: argparse.Namespace) -> int:
    from qsnmc.challenges.qsnmc2007 import import_qsnmc2007

    return _run_import(
        args, args.name, lambda dest: import_qsnmc2007(
            args.dir, dest, name=args.name, current_unit=args.current_unit, train_until_s=args.train_until,
            r_floor=args.r_floor,
        ),
    )


def _run_2009(args: argparse.Namespace) -> int:
    from qsnmc.challenges.qsnmc2009 import import_qsnmc2009

    name = args.name or f"qsnmc2009{args.challenge.lower()}"
    return _run_import(
        args,
        name,
        lambda dest: import_qsnmc2009(
            args.dir, dest, challenge=args.challenge, train_window_s=tuple(args.train_window),
            test_window_s=tuple(args.test_window), current_unit=args.current_unit, name=name,
        ),
    )


def _window(win: tuple[float, float] | None) -> str:
    return "-" if win is None else f"{win[0]:g}-{win[1]:g} s"


def _counts(trains: list | None) -> str:
    return "-" if trains is None else " ".join(str(len(t)) for t in trains)


def summary(challenge: Challenge) -> str:
    """A text summary of a challenge: its description, Delta and one row per stimulus."""
    from tabulate import tabulate

    rows = []
    for s in challenge.stimuli:
        tested = s.test_window_s is not None
        rows.append(
            [
                s.name,
                s.n_repetitions,
                _window(s.train_window_s),
                _counts(s.train_spikes_s),
                _window(s.test_window_s),
                _counts(s.test_spikes_s),
                f"{challenge.reliability(s.name):.3f}" if tested and s.n_repetitions >= 2 else "-",
            ]
        )
    table = tabulate(
        rows,
        headers=["stimulus", "reps", "train window", "train spikes", "test window", "test spikes", "R"],
        disable_numparse=True,
    )
    provenance = challenge.manifest.get("provenance", {})
    excluded = {k: v["test_excluded"] for k, v in (provenance.get("stimuli") or {}).items() if "test_excluded" in v}
    lines = [
        f"challenge {challenge.name!r} written to {challenge.path}",
        challenge.description,
        f"Delta = {challenge.delta_s * 1e3:g} ms; dt = {challenge.stimuli[0].dt_s * 1e3:g} ms",
        "",
        table,
    ]
    if excluded:
        lines += ["", "training only: " + "; ".join(f"stimulus {k}: {v}" for k, v in excluded.items())]
    if provenance.get("not_read"):
        lines.append(provenance["not_read"])
    return "\n".join(lines)
