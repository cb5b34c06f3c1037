"""``qsnmc score FILES --challenge NAME --label TEXT``: score spike times made anywhere, as a plugin's row.

The files are read and checked whole (:mod:`qsnmc.scoring.prediction_files`) before anything is
written; a refusal is one line on stderr and exit status 2. The row goes to a new run folder
(:mod:`qsnmc.harness.outside`); ``--against RUN`` also ranks it with that run's rows.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from qsnmc.cli import checks
from qsnmc.cli.checks import EXIT_USAGE, InputError

#: a label: a model name's characters (it names the row's folder)
LABEL_CHARS = "letters, digits, '-', '_' and '.', starting with a letter or digit, up to 64"


def add_score_command(sub: argparse._SubParsersAction) -> None:
    """Add ``score``."""
    p = sub.add_parser(
        "score", help="score predicted spike times from files (made by any simulator) as a ranked row",
        description="Score spike times predicted outside qsnmc for every test stimulus of a challenge, as a "
        "plugin's predictions are scored (Gamma, P = Gamma/R, bootstrap error, spike counts), and write the row "
        "to a new run folder that `qsnmc table` and `qsnmc report` read. Files: text (one time per line; "
        "`<stimulus>.txt` for one train compared with every repetition, `<stimulus>-<r>.txt` per repetition, or "
        "a '# stimulus: NAME' header), CSV (columns stimulus, [repetition], time_s|time_ms) or .npz (arrays "
        "<stimulus> or <stimulus>/<r>, and 'unit'); a folder stands for its .txt, .csv and .npz files. Every "
        "file is checked before anything is written. See docs/outside-models.md.",
        epilog="Exit status: 0 scored and written; 2 a file, option or name refused (one line on stderr; nothing "
        "written).")
    p.add_argument("files", nargs="+", metavar="FILE", help="prediction files, or folders of them")
    p.add_argument("--challenge", required=True, help="the challenge the spike times predict")
    p.add_argument("--label", required=True, help=f"the row's name in the table ({LABEL_CHARS})")
    p.add_argument("--unit", choices=["s", "ms"], default=None,
                   help="unit of every file's times (default: each file says it: '# unit: ms', a time_s or time_ms "
                   "column, an npz 'unit' entry)")
    p.add_argument("--description", default="", help="a line describing the model (shown in the record)")
    p.add_argument("--against", metavar="RUN",
                   help="also rank the row with the rows of RUN (a run folder or its name under --runs-dir)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where the run folder goes (default ./runs)")
    p.add_argument("--json", metavar="PATH", help="also write the table's rows as a JSON list")
    p.set_defaults(func=cmd_score)


def _check_label(label: str) -> None:
    from qsnmc.harness.plugins import MODEL_NAME

    if not MODEL_NAME.match(label):
        raise InputError(f"--label {label!r}: expected {LABEL_CHARS}")


def cmd_score(args: argparse.Namespace) -> int:
    """Check everything, score, write the run folder, print the table; 2 with one line on bad input."""
    from qsnmc.challenges.datadir import challenge_dir
    from qsnmc.challenges.store import ChallengeError, load_challenge
    from qsnmc.cli.rank import RankError, records_of_runs
    from qsnmc.harness.outside import outside_record, write_outside_run
    from qsnmc.harness.runstore import find_run, load_records
    from qsnmc.scoring.prediction_files import PredictionFileError, TestWindow, read_predictions, sha256_of

    start = time.perf_counter()
    try:
        _check_label(args.label)
        checks.runs_dir(args.runs_dir)
        checks.challenge_name(args.challenge)
        challenge = load_challenge(challenge_dir(args.challenge))
        against = find_run(Path(args.runs_dir), args.against) if args.against else None
        known = {s.name: TestWindow(s.window_s, s.n_repetitions) for s in challenge.test_stimuli()}
        predictions, files = read_predictions(args.files, known, args.unit)
        digests = [{"path": str(f.resolve()), "sha256": sha256_of(f)} for f in files]
        record = outside_record(challenge, predictions, args.label, digests, args.description)
        if against is not None:
            _check_against(against, challenge, args.label)
    except (InputError, PredictionFileError, ChallengeError, FileNotFoundError, RankError) as exc:
        print(f"qsnmc score: {exc}", file=sys.stderr)
        return EXIT_USAGE
    run_dir = write_outside_run(Path(args.runs_dir), challenge, predictions, record)
    runs = [run_dir] if against is None else [against, run_dir]
    records, info = records_of_runs(runs) if against is not None else (load_records(run_dir), None)
    _print_table(runs, records, info, args.json)
    print(f"Scored {len(files)} file(s) in {time.perf_counter() - start:.2f} s; run folder {run_dir}",
          file=sys.stderr)
    return 0


def _check_against(against: Path, challenge, label: str) -> None:
    """``--against RUN``: a run on this challenge with no row of this label."""
    import json

    from qsnmc.cli.rank import RankError, same_challenge
    from qsnmc.harness.outside import run_info
    from qsnmc.harness.runstore import RUN, load_records

    info = json.loads((against / RUN).read_text())
    if not same_challenge(info, run_info(challenge, [])):
        raise RankError(f"--against {against}: a run on challenge {info['challenge']!r} (or other windows or "
                        f"Delta), not {challenge.name!r}")
    if any(r["model"] == label for r in load_records(against)):
        raise InputError(f"--label {label!r}: {against} has a row of that name; choose another label")


def _print_table(runs: list[Path], records: list[dict], info: dict | None, json_path: str | None) -> None:
    import json

    from qsnmc.harness.runstore import RUN
    from qsnmc.scoring.table import challenge_header, format_table, ranking_rows

    info = info or json.loads((runs[-1] / RUN).read_text())
    rows = ranking_rows(records)
    where = "Run folders: " + ", ".join(map(str, runs)) if len(runs) > 1 else f"Run folder: {runs[0]}"
    print(format_table(rows, challenge_header(info) + "\n" + where))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(rows, indent=1) + "\n")
