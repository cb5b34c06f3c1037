"""``qsnmc data export-kit CHALLENGE DIR``: the public kit a participant may see (see :mod:`qsnmc.challenges.kit`)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

#: exit statuses, as every ``qsnmc data`` command's
EXIT_WRITTEN, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_export_kit(commands: argparse._SubParsersAction) -> None:
    """Add ``data export-kit``."""
    p = commands.add_parser(
        "export-kit",
        help="write a challenge's public kit for participants (training data, test currents; no hidden data)",
        description="Write what a participant may see of CHALLENGE into the new folder DIR, and nothing else: per "
        "training stimulus the current, the voltage of every repetition (one column each) and the recorded spike "
        "times; per test stimulus the current and the window to predict; dt, Delta, units (kit.json) and a "
        "README.md of the format; the same as an NWB file without the test windows' recordings. Participants "
        "hand back spike times, which `qsnmc score` scores. See docs/outside-models.md.",
    )
    p.add_argument("challenge", metavar="CHALLENGE", help="a challenge name (see qsnmc list --challenges)")
    p.add_argument("out", type=Path, metavar="DIR", help="the kit's folder (must not exist)")
    p.add_argument("--no-nwb", action="store_true", help="write the text files only")
    p.set_defaults(func=run_export_kit)


def run_export_kit(args: argparse.Namespace) -> int:
    """Check the name and the folder, then write the kit; one line on stderr and 2 on bad input."""
    from qsnmc.challenges.datadir import available_challenges, challenge_dir
    from qsnmc.challenges.kit import write_kit
    from qsnmc.challenges.store import ChallengeError, load_challenge

    if args.challenge not in (names := available_challenges()):
        print(f"error: no challenge {args.challenge!r}; challenges: {', '.join(names) or 'none'}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.out.exists():
        print(f"error: {args.out} exists; the kit goes into a new folder", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        challenge = load_challenge(challenge_dir(args.challenge))
    except ChallengeError as exc:
        print(f"error: challenge {args.challenge!r}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    start = time.perf_counter()
    try:
        path = write_kit(challenge, args.out, nwb=not args.no_nwb)
    except OSError as exc:
        print(f"error: {args.out}: cannot write: {exc}", file=sys.stderr)
        return EXIT_FAILED
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    tested = ", ".join(s.name for s in challenge.test_stimuli())
    print(f"public kit of {challenge.name!r} written to {path} ({size / 1e6:.1f} MB, "
          f"{time.perf_counter() - start:.1f} s): training data and the test currents of {tested}; no test-window "
          f"recording. Score what participants hand back with: qsnmc score FILES --challenge {challenge.name} "
          "--label NAME")
    return EXIT_WRITTEN
