"""The ``qsnmc`` command line: list, run, sweep, table, report, new, score, data."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from qsnmc import __version__
from qsnmc.settings import parse_overrides
from qsnmc.challenges.store import ChallengeError, load_challenge
from qsnmc.challenges.datadir import EMBEDDED, available_challenges, challenge_dir
from qsnmc.harness.discovery import discover_models
from qsnmc.harness.runstore import RUN, find_run
from qsnmc.harness.sandbox import bwrap_path
from qsnmc.cli import checks
from qsnmc.cli.checks import EXIT_USAGE, InputError
from qsnmc.cli.data import add_data_commands, source_label
from qsnmc.cli.notes import DefaultNumber, OneLineParser, print_notes
from qsnmc.cli.score import add_score_command
from qsnmc.cli.seeds import add_seed_options, chosen_seeds
from qsnmc.cli.suites import resolve_challenges, suite_header, suite_of_run, suites_help
from qsnmc.harness.suite import suite_info
from qsnmc.scoring.table import challenge_header, format_table, ranking_rows


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--submissions", default=checks.DefaultPath(checks.SUBMISSIONS), metavar="DIR",
                   help="folder of drop-in plugin files (default: ./submissions, if there is one)")


def _grid_size(grid: dict | None) -> str:
    """``"6 settings"`` for a param_grid of 6 combinations ("" without one)."""
    if not grid:
        return ""
    n = 1
    for values in grid.values():
        n *= len(values)
    return f"{n} settings"


def cmd_list(args: argparse.Namespace) -> int:
    if args.challenges:
        return _list_challenges()
    try:
        checks.submissions_dir(args.submissions)
    except InputError as exc:
        print(f"qsnmc list: {exc}", file=sys.stderr)
        return EXIT_USAGE
    entries = discover_models(args.submissions)
    rows = [
        [e.name, e.source.label, e.version, _grid_size(e.param_grid), e.description if e.ok else f"FAILED: {e.error}"]
        for e in entries
    ]
    from tabulate import tabulate

    print(tabulate(rows, headers=["model", "source", "version", "sweep", "description"], tablefmt="github"))
    return 0


def _list_challenges() -> int:
    from tabulate import tabulate

    rows = []
    for name in available_challenges():
        try:
            ch = load_challenge(challenge_dir(name), verify=False)
        except ChallengeError as exc:
            rows.append([name, f"BROKEN: {exc}", "", "", "", "", "", "", ""])
            continue
        source = source_label(ch)
        for i, s in enumerate(ch.manifest["stimuli"]):
            spikes = (s.get("train_spike_counts") or []) + (s.get("test_spike_counts") or [])
            r = ch.manifest.get("reliability", {}).get(s["name"])
            rows.append([
                name, s["name"], s["train_window_s"] or "", s["test_window_s"] or "",
                s["n_repetitions"], sum(spikes), "" if r is None else f"{r:.3f}", f"{1e3 * ch.delta_s:g}",
                source if i == 0 else "",
            ])
    print(tabulate(rows, headers=["challenge", "stimulus", "train s", "test s", "reps", "spikes", "R", "Δ ms",
                                  "source"], tablefmt="github"))
    return 0


def _interactive(args: argparse.Namespace) -> bool:
    """Progress bars and worker output: not with --quiet, and only on a terminal."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _load_for(command: str, name: str):
    try:
        return load_challenge(challenge_dir(name))
    except ChallengeError as exc:
        print(f"qsnmc {command}: challenge {name!r}: {exc}", file=sys.stderr)
        return None


def _warn_unsandboxed() -> None:
    if bwrap_path() is None:
        print(
            "WARNING: bubblewrap (bwrap) is not available: models run WITHOUT a sandbox and could read the "
            "hidden test data. Install bubblewrap (apt-get install bubblewrap) for an honest run.",
            file=sys.stderr,
        )


def _settings(args: argparse.Namespace):
    from qsnmc.harness.runner import RunSettings

    seeds = chosen_seeds(args)
    return RunSettings(
        seed=seeds[0], seeds=seeds if len(seeds) > 1 else (),
        budget=args.budget, timeout_s=float(args.timeout), memory_limit_MB=float(args.memory_limit),
        use_cache=not args.no_cache, jobs=args.jobs,
        echo=_interactive(args) and args.jobs == 1 and args.executor == "local",
        executor=args.executor, scheduler=args.scheduler, threads=args.threads,
    )


def _progress(args: argparse.Namespace, total: int, desc: str, several_seeds: bool = False,
              several_cells: bool = False):
    """A bar over finished jobs (off with --quiet and when stderr is not a terminal), and its callback."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, file=sys.stderr, unit="model", dynamic_ncols=True,
               disable=not _interactive(args) or args.jobs == 1 and args.executor == "local")

    def done(rec: dict) -> None:
        bar.update(1)
        if args.quiet:
            return
        if rec["status"] == "ok":
            what = f"Γ/R = {100 * rec['performance']:.1f} %" + (" (cached)" if rec["cached"] else "")
        else:
            what = f"FAILED ({rec['reason'][:200]})"
        which = (f" on {rec['challenge']}" if several_cells else "") + (f" seed {rec['seed']}" if several_seeds else "")
        line = f"  {rec['model']}{which}: {what}"
        if bar.disable:
            print(line, file=sys.stderr)
        else:
            bar.write(line, file=sys.stderr)

    return bar, done


def cmd_run(args: argparse.Namespace) -> int:
    from qsnmc.harness.runner import Runner, Task

    if not args.all and not args.models:
        print("qsnmc run: name models to run, or --all", file=sys.stderr)
        return 2
    seeds = chosen_seeds(args)  # checked while parsing
    try:
        params = parse_overrides(args.param)
    except ValueError as exc:
        print(f"qsnmc run: {exc}", file=sys.stderr)
        return 2
    if params and (args.all or len(args.models) != 1):
        print("qsnmc run: --param applies to one named model", file=sys.stderr)
        return 2
    try:
        _check_execution(args)
    except InputError as exc:
        print(f"qsnmc run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    challenges = [_load_for("run", name) for name in args.challenge_list]
    if None in challenges:
        return 2
    _warn_unsandboxed()
    entries = discover_models(args.submissions)
    try:
        if args.models:
            entries = checks.select_models(args.models, entries)
            params = checks.model_params(entries[0], params)
    except InputError as exc:
        print(f"qsnmc run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = _settings(args)
    if args.suite is not None or len(challenges) > 1:
        return _run_suite(args, challenges, [Task(e, params) for e in entries], settings)
    runner = Runner(challenges[0], Path(args.runs_dir), settings)
    if not args.quiet:
        where = f"Dask ({args.scheduler or 'LocalCluster'})" if args.executor == "dask" else f"{args.jobs} at a time"
        print(f"Run folder: {runner.run_dir} ({where})", file=sys.stderr)
    bar, done = _progress(args, len(entries) * len(seeds), "models" if len(seeds) == 1 else "fits", len(seeds) > 1)
    with bar:
        records = runner.run([Task(e, params) for e in entries], on_done=done)
    rows = ranking_rows(records)
    info = json.loads((runner.run_dir / RUN).read_text())
    print(format_table(rows, challenge_header(info)))
    print_notes(runner.run_dir, records, args)
    if args.json:
        _write_rows(Path(args.json), rows)
    return checks.run_status(records)


def _run_suite(args: argparse.Namespace, challenges: list, tasks: list, settings) -> int:
    """``qsnmc run`` over several challenges: one suite folder, the across-cell table."""
    from qsnmc.harness.suite import run_suite
    from qsnmc.scoring.suite import format_suite_table, suite_rows

    def started(run_dir: Path) -> None:
        if not args.quiet:
            where = f"Dask ({args.scheduler or 'LocalCluster'})" if args.executor == "dask" else f"{args.jobs} at a time"
            print(f"Suite folder: {run_dir} ({len(challenges)} challenges, their jobs in one pool; {where})",
                  file=sys.stderr)

    n_seeds = len(settings.seed_list)
    bar, done = _progress(args, len(tasks) * n_seeds * len(challenges), "jobs", n_seeds > 1, several_cells=True)
    with bar:
        result = run_suite(challenges, Path(args.runs_dir), settings, tasks, name=args.suite or "", on_done=done,
                           on_start=started)
    table, _ = suite_of_run(result.run_dir)
    print(format_suite_table(table, suite_header(result.run_dir)))
    if args.json:
        _write_rows(Path(args.json), suite_rows(table))
    return checks.run_status(r for records in result.records.values() for r in records)


def _check_execution(args: argparse.Namespace) -> None:
    """The input shared by run and sweep that needs no plugin code: numbers, paths, the challenges' names
    (run: ``args.challenge_list``, the challenges of ``--challenge LIST`` or ``--suite``)."""
    checks.execution_numbers(args)
    checks.submissions_dir(args.submissions)
    checks.runs_dir(args.runs_dir)
    if hasattr(args, "suite"):
        args.challenge_list = resolve_challenges(args.challenge, args.suite)
    else:
        checks.challenge_name(args.challenge)
    checks.scheduler(args.executor, args.scheduler)


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n")


def cmd_sweep(args: argparse.Namespace) -> int:
    from qsnmc.harness.sweep import format_sweep, grid_points, run_sweep

    try:
        checks.sweep_numbers(args)
        _check_execution(args)
    except InputError as exc:
        print(f"qsnmc sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    challenge = _load_for("sweep", args.challenge)
    if challenge is None:
        return 2
    try:
        checks.sweep_split(args.split, challenge)
    except InputError as exc:
        print(f"qsnmc sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _warn_unsandboxed()
    try:
        entry = checks.select_models([args.model], discover_models(args.submissions))[0]
    except InputError as exc:
        print(f"qsnmc sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if entry.error:
        print(f"qsnmc sweep: {entry.name}: {entry.error}", file=sys.stderr)
        return 2
    if not entry.param_grid:
        print(f"qsnmc sweep: model {entry.name!r} exposes no param_grid (a class attribute: name -> list of values)",
              file=sys.stderr)
        return 2
    try:
        fixed = _sweep_params(args, entry)
    except InputError as exc:
        print(f"qsnmc sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    seeds = chosen_seeds(args)
    bar, done = _progress(args, len(grid_points(entry.param_grid)) * len(seeds), f"sweep {entry.name}", len(seeds) > 1)
    try:
        with bar:
            result = run_sweep(challenge, entry, Path(args.runs_dir), _settings(args), split=args.split,
                               holdout=args.holdout, r_floor=args.r_floor, on_done=done, fixed=fixed)
    except ValueError as exc:
        print(f"qsnmc sweep: {exc}", file=sys.stderr)
        return 2
    where = (f"the last {100 * args.holdout:g} % of each of {challenge.name}'s training windows" if args.split == "time"
             else f"each of {challenge.name}'s training stimuli left out in turn")
    print(f"Sweep of {entry.name} on {where} (never the test window; held-out parts with R < {args.r_floor:g} "
          f"not scored); run folder {result.run_dir}")
    print(format_sweep(result))
    print_notes(result.run_dir, result.records, args)
    if args.json:
        _write_rows(Path(args.json), json.loads((result.run_dir / "sweep.json").read_text())["settings"])
    return checks.run_status(result.records)


def _sweep_params(args: argparse.Namespace, entry) -> dict:
    """``sweep --param KEY=VALUE``: settings given to every point of the grid, checked like run's; none swept."""
    try:
        params = parse_overrides(args.param)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    swept = sorted(set(params) & set(entry.param_grid))
    if swept:
        raise InputError(f"--param {swept[0]}: the grid sweeps it ({entry.param_grid[swept[0]]}); "
                         "--param fixes the settings the grid does not name")
    return checks.model_params(entry, params)


def cmd_report(args: argparse.Namespace) -> int:
    from qsnmc.cli.report import ReportError, write_report

    try:
        run_dir = find_run(Path(args.runs_dir), args.run)
        path = write_report(run_dir, Path(args.out) if args.out else None, t_from=args.t_from, t_to=args.t_to,
                            stimulus=args.stimulus)
    except (FileNotFoundError, ReportError, ChallengeError) as exc:
        print(f"qsnmc report: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from qsnmc.cli.new import check_new, write_skeleton

    try:
        checks.submissions_dir(args.submissions)
        check_new(args.name, Path(args.submissions))
        checks.new_model_name(args.name, discover_models(args.submissions))
        path = write_skeleton(args.name, Path(args.submissions))
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"qsnmc new: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {path}\nTry it: qsnmc run {args.name}   (and: qsnmc sweep {args.name})")
    return 0


#: the default --jobs never exceeds this (each worker holds its own torch / Brian2 in memory)
MAX_DEFAULT_JOBS = 8


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def default_jobs() -> int:
    """Models run at once by default: the cores this process may use, at most :data:`MAX_DEFAULT_JOBS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_JOBS, cores))


def _add_execution(p: argparse.ArgumentParser, several_seeds: bool = False, several_challenges: bool = False) -> None:
    if several_challenges:
        p.add_argument("--challenge", metavar="LIST",
                       help=f"challenge(s) to run on (default: {EMBEDDED}): a name, or a comma-separated list of "
                            "names and glob patterns (e.g. drn156,drn157 or 'drn*'); several challenges make a "
                            "suite run (see --suite)")
        p.add_argument("--suite", metavar="NAME",
                       help="run on a declared suite of challenges (exclusive with --challenge): "
                            f"{suites_help()}. A suite run writes one folder holding one run folder per "
                            "challenge; each (model, challenge, seed) is its own cached job, all of them in one pool "
                            "(longest first); a model failing on one challenge is a failed cell, not a failed "
                            "run. It prints the across-cell table (see docs/suites.md)")
    else:
        p.add_argument("--challenge", default=EMBEDDED, help=f"challenge to run on (default: {EMBEDDED})")
    add_seed_options(p, several=several_seeds)
    p.add_argument("--budget", type=float, default=1.0,
                   help="compute scale passed to every model: 1 = each model's default fit (default 1)")
    p.add_argument("--timeout", type=float, default=DefaultNumber(1800.0), metavar="SECONDS",
                   help="limit per model, fit and prediction together (default 1800 s; a row reused from the "
                   "cache was not fitted, so no limit applies to it)")
    p.add_argument("--memory-limit", type=float, default=DefaultNumber(8000.0), metavar="MB",
                   help="resident-memory limit per model (default 8000 MB)")
    p.add_argument("--jobs", type=_positive_int, default=default_jobs(),
                   help=f"models run at once (default: this machine's usable cores, at most {MAX_DEFAULT_JOBS}; "
                        f"here {default_jobs()}); with --executor dask and no --scheduler: LocalCluster workers")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="BLAS/OpenMP/torch threads per model (default 1, so that results do not depend on "
                        "the machine's cores or on --jobs)")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local: subprocesses of this machine; dask: tasks on a dask.distributed cluster")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="address of the Dask scheduler (default with --executor dask: start a LocalCluster)")
    p.add_argument("--no-cache", action="store_true", help="refit even if an unchanged model was run before")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where run folders go (default ./runs)")
    p.add_argument("--quiet", action="store_true", help="print only the table (no progress bars)")


def cmd_table(args: argparse.Namespace) -> int:
    from qsnmc.cli.rank import RankError, records_of_runs

    try:
        run_dirs = [find_run(Path(args.runs_dir), r) for r in (args.run or [None])]
    except FileNotFoundError as exc:
        print(f"qsnmc table: {exc}", file=sys.stderr)
        return 2
    if len(run_dirs) == 1 and suite_info(run_dirs[0]) is not None:
        from qsnmc.scoring.suite import format_suite_table, suite_rows

        table, _ = suite_of_run(run_dirs[0])
        print(format_suite_table(table, suite_header(run_dirs[0])))
        if args.json:
            _write_rows(Path(args.json), suite_rows(table))
        return 0
    try:
        records, info = records_of_runs(run_dirs)
    except (FileNotFoundError, RankError) as exc:
        print(f"qsnmc table: {exc}", file=sys.stderr)
        return 2
    rows = ranking_rows(records)
    where = f"Run folder: {run_dirs[0]}" if len(run_dirs) == 1 else f"Run folders: {', '.join(map(str, run_dirs))}"
    print(format_table(rows, challenge_header(info) + f"\n{where}"))
    if args.json:
        _write_rows(Path(args.json), rows)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="qsnmc",
        description="Benchmark harness for single-neuron spike-time prediction (QSNMC 2009 rules).",
    )
    parser.add_argument("--version", action="version", version=f"qsnmc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list every model found (built-in, entry points, submissions)")
    _add_common(p)
    p.add_argument("--challenges", action="store_true", help="list the challenges instead")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="fit, predict the hidden test window, score and rank models",
                       epilog="Every input (models, --param settings, numbers, paths, the challenges) is checked "
                              "before any work starts. " + checks.EXIT_STATUSES)
    _add_common(p)
    p.add_argument("models", nargs="*", metavar="NAME", help="models to run (see `qsnmc list`)")
    p.add_argument("--all", action="store_true", help="run every model found")
    _add_execution(p, several_seeds=True, several_challenges=True)
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a keyword setting for the one named model (e.g. the best of `qsnmc sweep`); repeatable")
    p.add_argument("--json", metavar="PATH", help="also write the table's rows as a JSON list (a suite run: one "
                                                  "row per model across the challenges)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="evaluate a model's param_grid on held-out training data (never the test window)",
                       epilog="Every input is checked before any work starts. "
                              + checks.EXIT_STATUSES.replace("row", "setting"))
    _add_common(p)
    p.add_argument("model", metavar="NAME", help="a model exposing param_grid")
    p.add_argument("--split", choices=["time", "stimulus"], default="time",
                   help="time: fit on the first part of each training window, score the rest (default); "
                        "stimulus: leave each training stimulus out in turn (needs 2 or more)")
    p.add_argument("--holdout", type=float, default=0.25,
                   help="with --split time: fraction at the end of each training window to score on (default 0.25)")
    p.add_argument("--r-floor", type=float, default=0.3,
                   help="held-out parts whose own reliability R is below this are not scored (default 0.3)")
    _add_execution(p, several_seeds=True)
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a setting given to every point of the grid (one the grid does not sweep); repeatable")
    p.add_argument("--json", metavar="PATH",
                   help="also write every setting's row (label, params, held-out Γ, P, error) as a JSON list")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="write an HTML report with figures for the last run (or RUN); for a suite "
                                      "folder: the models x challenges heat map, the across-cell table and each "
                                      "challenge's own report")
    p.add_argument("run", nargs="?", help="run folder or its name under --runs-dir, e.g. SUITE/CELL for one cell of "
                                          "a suite (default: the latest)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where run folders are (default ./runs)")
    p.add_argument("--out", metavar="DIR", help="folder for report.html and its PNGs (default RUN/report)")
    p.add_argument("--from", dest="t_from", type=float, metavar="SECONDS",
                   help="start of the raster's stretch, inside the test window (absolute protocol time; default: the "
                   "busiest 2 s of the test window)")
    p.add_argument("--to", dest="t_to", type=float, metavar="SECONDS",
                   help="end of the raster's stretch (default: --from + 2 s)")
    p.add_argument("--stimulus", help="draw the raster of this test stimulus only (default: one raster per test stimulus)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("new", help="write a documented submission skeleton that runs and scores out of the box")
    _add_common(p)
    p.add_argument("name", metavar="NAME",
                   help="the new model's name (letters, digits, - and _; not the name of a model qsnmc list shows)")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("table", help="print the ranking table of the last run (or of RUN) without re-running; "
                                     "for a suite folder the across-cell table")
    p.add_argument("run", nargs="*", metavar="RUN",
                   help="run folder or its name under --runs-dir (default: the latest), e.g. SUITE/CELL for one cell "
                   "of a suite; several runs on one challenge are ranked together (a name in two runs gets @RUN)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where run folders are (default ./runs)")
    p.add_argument("--json", metavar="PATH", help="also write the table's rows as a JSON list")
    p.set_defaults(func=cmd_table)

    add_score_command(sub)
    add_data_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
