"""The ``qsnmc data`` command group: import recordings as challenges, export a challenge as NWB.

``qsnmc data import-qsnmc2007 DIR``, ``import-qsnmc2009 DIR``, ``import-nwb FILE``,
``import-arrays FILE`` and ``import-neo FILE...`` (acquisition files read with Neo) write a
challenge into the user's data folder
(:func:`qsnmc.challenges.datadir.challenges_dir`) and print its summary: source, stimuli,
repetitions, windows, spike counts, R per test stimulus, Delta; ``--dry-run`` prints it and writes
nothing. ``export-nwb CHALLENGE FILE`` writes any challenge as an NWB file; ``export-kit CHALLENGE
DIR`` its public kit (:mod:`qsnmc.cli.kit`).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from qsnmc.challenges.datadir import EMBEDDED, challenges_dir
from qsnmc.challenges.recorded import CURRENT_TOLERANCE_PA
from qsnmc.challenges.textdata import CURRENT_UNITS, DataImportError, find_data_file
from qsnmc.cli.kit import add_export_kit

if TYPE_CHECKING:
    from qsnmc.challenges.store import Challenge

#: the manifest file that marks a challenge folder (see :mod:`qsnmc.challenges.store`)
MANIFEST = "manifest.json"

#: exit statuses of every ``qsnmc data`` command
EXIT_WRITTEN = 0  # the challenge (or the NWB file) was written
EXIT_FAILED = 1  # the input was good but writing or re-reading the result failed
EXIT_BAD_INPUT = 2  # a bad file, option or name (or usage): nothing was written
#: the --dry-run of the importers that write through a challenge folder
DRY_RUN_HELP = "read, check and split, print the summary (stimuli, windows, spikes, R) and stop; write nothing"
EXIT_STATUSES = ("Exit status: 0 written; 1 writing failed; 2 bad input or usage (a file, option or name refused; "
                 "nothing written)")


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``data`` command group (its import subcommands) to an argparse subparsers object.

    Every subcommand sets ``func``: a callable taking the parsed arguments and returning
    an exit status (:data:`EXIT_WRITTEN`, :data:`EXIT_FAILED`, :data:`EXIT_BAD_INPUT`); each
    subcommand's ``--help`` ends with them.
    """
    data = subparsers.add_parser(
        "data", help="import recordings as challenges (2007, 2009, NWB, arrays, Neo files); export NWB")
    data.set_defaults(func=lambda args: _usage(data))
    commands = data.add_subparsers(title="data commands", metavar="COMMAND")

    _add_import_2007(commands)
    _add_import_2009(commands)
    _add_import_nwb(commands)
    _add_import_arrays(commands)
    _neo_command(commands)
    _add_export_nwb(commands)
    add_export_kit(commands)
    data.epilog = EXIT_STATUSES
    for parser in commands.choices.values():
        parser.epilog = parser.epilog or EXIT_STATUSES
    return data


def _add_import_2007(commands: argparse._SubParsersAction) -> None:
    """Add ``data import-qsnmc2007``."""
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


def _add_import_2009(commands: argparse._SubParsersAction) -> None:
    """Add ``data import-qsnmc2009``."""
    p09 = commands.add_parser(
        "import-qsnmc2009",
        help="import QSNMC 2009 Challenge A/B files (current.txt, voltage_allrep.txt) on a substitute split",
        description="Import QSNMC 2009 Challenge A or B (current.txt, voltage_allrep.txt) into "
        "<data dir>/challenges/NAME. The competition's test window was never published: the challenge "
        "is scored on a substitute split inside the recorded voltage. Delta = 4 ms.",
    )
    p09.add_argument("dir", type=Path, metavar="DIR", help="folder holding current.txt and voltage_allrep.txt")
    p09.add_argument("--letter", choices=["A", "B"], default="A",
                     help="which of the competition's challenges, A or B (default: %(default)s); --challenge names "
                          "a challenge everywhere else")
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


def _add_import_nwb(commands: argparse._SubParsersAction) -> None:
    """Add ``data import-nwb``."""
    pnwb = _recording_import(
        commands, "import-nwb", ".nwb",
        help="import current-clamp recordings of an NWB file (your own cell)",
        description="Import the current-clamp sweeps (CurrentClampSeries with their CurrentClampStimulusSeries) of "
        "an NWB file into <data dir>/challenges/NAME. The repetitions of each stimulus come from the file's icephys "
        "tables (sequential recordings of one stimulus_type) or from --stimulus. Units and rate come from the file "
        "(converted to mV, pA, s); spikes are upward crossings of --threshold-mv. Choose the split with "
        "--train-until and/or --test-stimuli. A file written by export-nwb is restored unchanged (its own windows, "
        "spike times, Delta) when no split option is given.",
        delta_default=None,
    )
    pnwb.add_argument(
        "--stimulus", action="append", default=[], metavar="NAME=SWEEP,SWEEP,...",
        help="the sweeps (series names or sweep numbers) that repeat stimulus NAME; repeat the option for each "
        "stimulus (default: the file's icephys tables)",
    )
    pnwb.add_argument(
        "--current-tolerance", type=float, default=CURRENT_TOLERANCE_PA, metavar="PA",
        help="largest difference between the currents of one stimulus' sweeps, in pA (default: %(default)g)",
    )
    pnwb.set_defaults(func=_run_nwb)


def _add_import_arrays(commands: argparse._SubParsersAction) -> None:
    """Add ``data import-arrays``."""
    parr = _recording_import(
        commands, "import-arrays", ".npz",
        help="import a plain .npz of recordings (dt_s, units, current/NAME, voltage/NAME; see the README)",
        description="Import a plain .npz (dt_s; current_unit pA|nA|A; voltage_unit mV|V; current/NAME of shape "
        "(n_samples,) and voltage/NAME of shape (n_repetitions, n_samples) per stimulus) into "
        "<data dir>/challenges/NAME. Spikes are upward crossings of --threshold-mv. Choose the split with "
        "--train-until and/or --test-stimuli.",
        delta_default=4.0,
    )
    parr.set_defaults(func=_run_arrays)


def _add_export_nwb(commands: argparse._SubParsersAction) -> None:
    """Add ``data export-nwb``."""
    pexp = commands.add_parser(
        "export-nwb",
        help="write a challenge (the embedded one included) as an NWB file",
        description="Write CHALLENGE as an NWB file with the icephys tables filled in: one sweep per repetition, "
        "current and voltage (NaN where the challenge holds none: outside training windows), and the recorded "
        "spike times, windows and settings in processing/qsnmc. The file holds the hidden test spike times: share "
        "it, never give it to a model. import-nwb restores the challenge unchanged. The file passes the NWB "
        "Inspector without critical or best-practice-violation messages; its Subject says 'unknown' unless "
        "--species, --age and --sex are given.",
    )
    pexp.add_argument("challenge", metavar="CHALLENGE", help="a challenge name (see qsnmc list --challenges)")
    pexp.add_argument("out", type=Path, metavar="FILE", help="the .nwb file to write")
    pexp.add_argument("--force", action="store_true", help="replace FILE if it exists")
    pexp.add_argument("--species", default=None, metavar="NAME",
                      help="the Subject's species, Latin binomial or NCBI taxonomy IRI (default: unknown, the "
                      "taxonomy's root)")
    pexp.add_argument("--age", default=None, metavar="ISO8601", help="the Subject's age, e.g. P21D (default: P0D/)")
    pexp.add_argument("--sex", default=None, choices=["M", "F", "O", "U"], help="the Subject's sex (default: U)")
    pexp.set_defaults(func=_run_export)


NEO_EPILOG = """\
sweeps are numbered from 1 across the files in the order given; channels are named as the file
names them, or numbered from 0 (the error for an unknown channel lists them). Repetitions: sweeps
whose currents, averaged over 5 ms bins, differ nowhere by more than max(--current-tolerance,
--current-tolerance-sd x the first sweep's current SD) repeat one stimulus (S1, S2, ...); a
stimulus of one sweep is training-only (no R); the sweeps of --test-files are grouped among
themselves and must repeat. All files (--aec included) must come from one recording session
(--session-gap). The stimuli found are listed before anything is written. Exit status: 0
written (or, with --dry-run, listed and importable); 2 bad input or usage (a one-line error on
stderr naming the file and the problem; nothing written)."""


def _neo_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``import-neo FILE...``: acquisition files (ABF, Igor, NIX...) read with Neo."""
    parser = commands.add_parser(
        "import-neo",
        help="import current-clamp sweeps of acquisition files read with Neo (Axon ABF, Igor, NIX, WinWCP, ...)",
        description="Import the sweeps of acquisition files (any format Neo reads: Axon .abf, Igor .ibw/.pxp, NIX "
        ".nix, WinWCP, AxoGraph, Spike2...) into <data dir>/challenges/NAME. The voltage and current channels "
        "come from the files (units converted to mV and pA), the current from a second set of files "
        "(--current-files) or from the ABF protocol (--current-from-protocol). Sweeps injecting the same "
        "current are grouped into stimuli and listed (sweeps, repetitions, spike counts) before anything is "
        "written; --dry-run stops there. Spikes are upward crossings of --threshold-mv. Choose the split with "
        "--train-until and/or --test-stimuli (stimuli are named S1, S2, ... as listed), or name the files that hold "
        "the test with --test-files (the GIF protocol: a training sweep recorded once, a frozen current repeated; "
        "sweeps may differ in length). --aec FILE compensates the electrode. Needs the optional extra: "
        "pip install -e '.[neo]'.",
        epilog=NEO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE",
                        help="acquisition files; one may hold many sweeps (ABF) or one sweep each (Igor waves)")
    parser.add_argument("--voltage-channel", default=None, metavar="NAME|INDEX",
                        help="the membrane voltage channel (default: the first channel in mV or V)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--current-channel", default=None, metavar="NAME|INDEX",
                        help="the injected current channel, in FILE or in --current-files (default: the first "
                        "channel in pA, nA or A)")
    source.add_argument("--current-from-protocol", action="store_true",
                        help="ABF only: take the current from the protocol's command waveform (Neo's "
                        "AxonIO.read_raw_protocol()), where it was not recorded; the manifest says so")
    parser.add_argument("--current-files", type=Path, nargs="+", default=[], metavar="FILE",
                        help="files holding the current, one per voltage FILE in the same order (the k-th current "
                        "file pairs with the k-th FILE, sweep by sweep), e.g. Igor waves of one sweep each")
    parser.add_argument("--test-files", type=Path, nargs="+", default=[], metavar="FILE",
                        help="files holding the test: their sweeps repeat one frozen current (2 or more "
                        "repetitions), held out whole for the test; the FILEs before it are for training (the GIF "
                        "protocol: a training file, a test file)")
    parser.add_argument("--aec", type=Path, default=None, metavar="FILE",
                        help="a sweep of small subthreshold noise current: estimate the electrode from it (Badel et "
                        "al. 2008, as the GIFFittingToolbox does) and give models the compensated voltage "
                        "(spikes still come from the recorded voltage); the manifest keeps the kernel and its fit")
    parser.add_argument("--session-gap", type=float, default=5.0, metavar="MINUTES",
                        help="longest pause between the end of one file and the start of the next (from the files' "
                        "headers): files further apart are refused as another cell's (default: %(default)g)")
    parser.add_argument("--sweeps", default=None, metavar="SPEC",
                        help="sweeps to import, numbered from 1 across the files (FILEs, then --test-files): e.g. "
                        "1-8,10,12- (default: all)")
    parser.add_argument("--name", default=None, help="challenge name (default: the first file's name without suffix)")
    _split_options(parser, delta_default=4.0)
    parser.add_argument("--current-tolerance", type=float, default=CURRENT_TOLERANCE_PA, metavar="PA",
                        help="repetitions: least tolerance between two sweeps' currents, in pA (default: %(default)g)")
    parser.add_argument("--current-tolerance-sd", type=float, default=0.1, metavar="FRACTION",
                        help="repetitions: tolerance as a fraction of the current's SD, when larger "
                        "(default: %(default)g)")
    parser.add_argument("--dry-run", action="store_true", help="list the stimuli found (and, once a split is given, "
                        "the windows and R that would be written) and stop; write nothing")
    parser.add_argument("--force", action="store_true", help="replace an existing challenge of that name")
    parser.set_defaults(func=_run_neo)
    return parser


def _recording_import(commands: argparse._SubParsersAction, command: str, suffix: str, *, help: str,
                      description: str, delta_default: float | None) -> argparse.ArgumentParser:
    """An import command for one's own recordings: FILE, --name, the split options, --force."""
    parser = commands.add_parser(command, help=help, description=description)
    parser.add_argument("file", type=Path, metavar="FILE", help=f"the {suffix} file")
    parser.add_argument("--name", default=None, help=f"challenge name (default: the file's name without {suffix})")
    _split_options(parser, delta_default=delta_default)
    parser.add_argument("--force", action="store_true", help="replace an existing challenge of that name")
    parser.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    return parser


def _split_options(parser: argparse.ArgumentParser, *, delta_default: float | None) -> None:
    parser.add_argument(
        "--train-until", type=float, default=None, metavar="SECONDS",
        help="time split: train on 0..SECONDS of every stimulus, test on SECONDS..its end",
    )
    parser.add_argument(
        "--test-stimuli", default="", metavar="A,B",
        help="hold these stimuli out whole for the test (with --train-until, the others still split in time)",
    )
    parser.add_argument(
        "--r-floor", type=float, default=0.3, metavar="R",
        help="test a stimulus only if its intrinsic reliability in its test window is at least R; "
        "the others are training-only, and the manifest says why (default: %(default)g)",
    )
    default = "4, or what a file written by export-nwb stored" if delta_default is None else f"{delta_default:g}"
    parser.add_argument("--delta-ms", type=float, default=delta_default, metavar="MS",
                        help=f"coincidence window Delta in ms (default: {default})")
    stored = ", or what a file written by export-nwb stored; such a file carries its own spike times" \
        if delta_default is None else ""
    parser.add_argument("--threshold-mv", type=float, default=None if delta_default is None else 0.0, metavar="MV",
                        help=f"spike threshold: upward crossings of MV (default: 0{stored})")


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--current-unit", choices=sorted(CURRENT_UNITS), default=None,
        help="unit of the current in the files (default: pA, refused if the amplitude is implausible)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing challenge of that name")
    parser.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)


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


def _run_import(args: argparse.Namespace, name: str, do_import: Callable[[Path], Path],
                check_input: Callable[[], object] | None = None) -> int:
    """Check the input (``check_input``: a quick look at the files), then the name, then import and summarise."""
    from qsnmc.challenges.store import ChallengeError, load_challenge

    try:
        if check_input is not None:
            check_input()  # a wrong folder or file is named as such, before "already exists"
    except DataImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if getattr(args, "dry_run", False):
        return _dry_run(name, do_import)
    dest = _destination(name, args.force)
    if dest is None:
        return EXIT_BAD_INPUT
    try:
        folder = do_import(dest)
    except DataImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: cannot write challenge {name!r} to {dest}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        challenge = load_challenge(folder)
    except ChallengeError as exc:
        print(f"error: the written challenge does not read back: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(summary(challenge))
    return EXIT_WRITTEN


def _dry_run(name: str, do_import: Callable[[Path], Path]) -> int:
    """``--dry-run``: import into a temporary folder, print the summary, delete it: nothing written."""
    import shutil
    import tempfile

    from qsnmc.challenges.store import ChallengeError, load_challenge

    if name == EMBEDDED or not name or Path(name).name != name or name.startswith("."):
        print(f"error: {name!r} is not a usable challenge name", file=sys.stderr)
        return EXIT_BAD_INPUT
    tmp = Path(tempfile.mkdtemp(prefix="qsnmc-dry-run-"))
    try:
        challenge = load_challenge(do_import(tmp / name))
        print(summary(challenge).replace(f"written to {challenge.path}", "read and split (dry run)", 1))
    except (DataImportError, ChallengeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("dry run: nothing written")
    return EXIT_WRITTEN


def _run_2007(args: argparse.Namespace) -> int:
    from qsnmc.challenges.qsnmc2007 import check_source, import_qsnmc2007

    return _run_import(
        args, args.name, lambda dest: import_qsnmc2007(
            args.dir, dest, name=args.name, current_unit=args.current_unit, train_until_s=args.train_until,
            r_floor=args.r_floor,
        ), lambda: check_source(args.dir),
    )


def _run_2009(args: argparse.Namespace) -> int:
    from qsnmc.challenges.qsnmc2009 import import_qsnmc2009

    name = args.name or f"qsnmc2009{args.letter.lower()}"
    return _run_import(
        args,
        name,
        lambda dest: import_qsnmc2009(
            args.dir, dest, challenge=args.letter, train_window_s=tuple(args.train_window),
            test_window_s=tuple(args.test_window), current_unit=args.current_unit, name=name,
        ),
        lambda: [find_data_file(args.dir, [f"{kind}.txt", f"{kind}.csv"], what=kind)
                 for kind in ("current", "voltage_allrep")],
    )


def _default_name(path: Path, name: str | None) -> str:
    return name or re.sub(r"[^A-Za-z0-9_-]", "-", Path(path).stem) or "imported"


def _test_stimuli(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _stimulus_groups(values: list[str]) -> dict[str, list[str]] | None:
    groups: dict[str, list[str]] = {}
    for value in values:
        name, sep, sweeps = value.partition("=")
        members = [s.strip() for s in sweeps.split(",") if s.strip()]
        if not sep or not name.strip() or not members:
            raise DataImportError(f"--stimulus {value}: expected NAME=SWEEP,SWEEP,...")
        if name.strip() in groups:
            raise DataImportError(f"--stimulus {value}: stimulus {name.strip()} given twice")
        groups[name.strip()] = members
    return groups or None


def _run_nwb(args: argparse.Namespace) -> int:
    from qsnmc.challenges.nwb import check_nwb_file, import_nwb

    name = _default_name(args.file, args.name)

    def do_import(dest: Path) -> Path:
        return import_nwb(
            args.file, dest, name=name, stimuli=_stimulus_groups(args.stimulus), train_until_s=args.train_until,
            test_stimuli=_test_stimuli(args.test_stimuli), r_floor=args.r_floor, delta_ms=args.delta_ms,
            threshold_mV=args.threshold_mv, current_tolerance_pA=args.current_tolerance,
        )

    return _run_import(args, name, do_import, lambda: check_nwb_file(args.file))


def _run_arrays(args: argparse.Namespace) -> int:
    from qsnmc.challenges.arrays import check_arrays_file, import_arrays

    name = _default_name(args.file, args.name)
    return _run_import(
        args, name, lambda dest: import_arrays(
            args.file, dest, name=name, train_until_s=args.train_until, test_stimuli=_test_stimuli(args.test_stimuli),
            r_floor=args.r_floor, delta_ms=args.delta_ms, threshold_mV=args.threshold_mv,
        ), lambda: check_arrays_file(args.file),
    )


def _run_neo(args: argparse.Namespace) -> int:
    """import-neo: read, list what was found, check, then (unless --dry-run) split and write; 2 on bad input."""
    from qsnmc.challenges.split import Split
    from qsnmc.challenges.store import ChallengeError, load_challenge

    name = _default_name(args.files[0], args.name)
    dest = None if args.dry_run else _destination(name, args.force)
    if dest is None and not args.dry_run:
        return 2
    abs_tol, rel_tol = args.current_tolerance, args.current_tolerance_sd
    try:
        from qsnmc.challenges.neo_cell import read_cell
        from qsnmc.challenges.neo_challenge import (check_importable, find_stimuli, listing, split_preview,
                                                    stimuli_from_test_files, write_neo)

        if not (abs_tol >= 0 and rel_tol >= 0):
            raise DataImportError(f"--current-tolerance {abs_tol:g} / --current-tolerance-sd {rel_tol:g}: expected "
                                  "numbers >= 0")
        cell = read_cell(
            args.files, test_files=args.test_files, aec_file=args.aec, session_gap_s=args.session_gap * 60,
            threshold_mV=args.threshold_mv, voltage_channel=args.voltage_channel, current_channel=args.current_channel,
            current_files=args.current_files, current_from_protocol=args.current_from_protocol, sweeps=args.sweeps,
        )
        recordings = find_stimuli(cell.sweeps, threshold_mV=args.threshold_mv, abs_tol_pA=abs_tol, rel_tol_sd=rel_tol,
                                  test_numbers=cell.test_numbers, electrode=cell.electrode)
        cell.sweeps = []  # the stimuli hold copies: free the sweeps before the write (peak memory)
        print(listing(recordings, cell.facts, abs_tol, rel_tol), flush=True)
        read = [*args.files, *args.test_files]
        check_importable(recordings, read, args.threshold_mv)
        held_out = tuple(dict.fromkeys([*_test_stimuli(args.test_stimuli), *stimuli_from_test_files(recordings)]))
        split = Split(args.train_until, held_out, args.r_floor, args.delta_ms / 1e3)
        if args.dry_run:
            if split.train_until_s is not None or split.test_stimuli:
                print(split_preview(recordings, split))
            print("dry run: nothing written")
            return 0
        folder = write_neo(recordings, cell.facts, read, dest, name=name, split=split, threshold_mV=args.threshold_mv,
                           abs_tol_pA=abs_tol, rel_tol_sd=rel_tol)
        challenge = load_challenge(folder)
    except (DataImportError, ChallengeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(summary(challenge))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    import time

    from qsnmc.challenges.datadir import available_challenges, challenge_dir
    from qsnmc.challenges.nwb import export_nwb
    from qsnmc.challenges.store import ChallengeError, load_challenge

    if args.out.exists() and not args.force:
        print(f"error: {args.out} exists; use --force to replace it", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.challenge not in (names := available_challenges()):
        print(f"error: no challenge {args.challenge!r}; challenges: {', '.join(names) or 'none'}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        challenge = load_challenge(challenge_dir(args.challenge))
    except ChallengeError as exc:
        print(f"error: challenge {args.challenge!r}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    start = time.perf_counter()
    try:
        subject = {k: v for k, v in (("species", args.species), ("age", args.age), ("sex", args.sex)) if v}
        path = export_nwb(challenge, args.out, subject)
    except OSError as exc:
        print(f"error: {args.out}: cannot write: {exc}", file=sys.stderr)
        return EXIT_FAILED
    n_sweeps = sum(s.n_repetitions for s in challenge.stimuli)
    print(f"challenge {challenge.name!r} written to {path} ({n_sweeps} sweeps, {path.stat().st_size / 1e6:.1f} MB, "
          f"{time.perf_counter() - start:.1f} s); it holds the hidden test spike times: never give it to a model")
    return EXIT_WRITTEN


def source_label(challenge: Challenge) -> str:
    """Where a challenge came from, in one cell: the file (or folder) and the start of its sha256."""
    source = challenge.source()
    if not source["file"]:
        return "-"
    if source["sha256"]:
        return f"{source['file']} (sha256 {source['sha256'][:16]})"
    if (challenge.manifest.get("provenance") or {}).get("source_dir"):
        return f"{source['file']} (no sha256: imported before qsnmc recorded one; re-import with --force)"
    return source["file"]


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
        f"source: {source_label(challenge)}",
        f"Delta = {challenge.delta_s * 1e3:g} ms; dt = {challenge.stimuli[0].dt_s * 1e3:g} ms; spikes: upward "
        f"crossings of {challenge.threshold_mV:g} mV",
        "",
        table,
    ]
    if excluded:
        lines += ["", "training only: " + "; ".join(f"stimulus {k}: {v}" for k, v in excluded.items())]
    if provenance.get("not_read"):
        lines.append(provenance["not_read"])
    return "\n".join(lines)
