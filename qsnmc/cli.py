"""The ``qsnmc`` command line: list, run, table, data."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from qsnmc import __version__
from qsnmc.challenge import ChallengeError, load_challenge
from qsnmc.datadir import EMBEDDED, available_challenges, challenge_dir
from qsnmc.discovery import ModelEntry, discover_models
from qsnmc.runstore import RUN, find_run, load_records
from qsnmc.sandbox import bwrap_path
from qsnmc.table import format_table, ranking_rows


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--submissions", default="submissions", metavar="DIR",
                   help="folder of drop-in plugin files (default: ./submissions)")


def _challenge_header(run_info: dict) -> str:
    rel = ", ".join(f"{k}: {v:.3f}" for k, v in run_info.get("reliability", {}).items())
    wins = "; ".join(
        f"{s['name']}: train {s['train_window_s']} s, test {s['test_window_s']} s"
        for s in run_info.get("stimuli", []) if s.get("test_window_s")
    )
    return (
        f"Challenge {run_info['challenge']!r} (Δ = {1e3 * run_info['delta_s']:g} ms; {wins}; R = {rel})\n"
        f"Run started {run_info.get('started', '?')}, seed {run_info['settings']['seed']}, "
        f"budget {run_info['settings']['budget']:g}"
    )


def cmd_list(args: argparse.Namespace) -> int:
    if args.challenges:
        return _list_challenges()
    entries = discover_models(args.submissions)
    rows = [
        [e.name, e.source.label, e.version, e.description if e.ok else f"FAILED: {e.error}"]
        for e in entries
    ]
    from tabulate import tabulate

    print(tabulate(rows, headers=["model", "source", "version", "description"], tablefmt="github"))
    return 0


def _list_challenges() -> int:
    from tabulate import tabulate

    rows = []
    for name in available_challenges():
        try:
            ch = load_challenge(challenge_dir(name), verify=False)
        except ChallengeError as exc:
            rows.append([name, f"BROKEN: {exc}", "", "", "", ""])
            continue
        for s in ch.manifest["stimuli"]:
            spikes = (s.get("train_spike_counts") or []) + (s.get("test_spike_counts") or [])
            r = ch.manifest.get("reliability", {}).get(s["name"])
            rows.append([
                name, s["name"], s["train_window_s"] or "", s["test_window_s"] or "",
                s["n_repetitions"], sum(spikes), "" if r is None else f"{r:.3f}", f"{1e3 * ch.delta_s:g}",
            ])
    print(tabulate(rows, headers=["challenge", "stimulus", "train s", "test s", "reps", "spikes", "R", "Δ ms"],
                   tablefmt="github"))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from qsnmc.runner import Runner, RunSettings

    if not args.all and not args.models:
        print("qsnmc run: name models to run, or --all", file=sys.stderr)
        return 2
    try:
        challenge = load_challenge(challenge_dir(args.challenge))
    except ChallengeError as exc:
        print(f"qsnmc run: challenge {args.challenge!r}: {exc}", file=sys.stderr)
        return 2
    if bwrap_path() is None:
        print(
            "WARNING: bubblewrap (bwrap) is not available: models run WITHOUT a sandbox and could read the "
            "hidden test data. Install bubblewrap (apt-get install bubblewrap) for an honest run.",
            file=sys.stderr,
        )
    entries = discover_models(args.submissions)
    if args.models:
        known = {e.name: e for e in entries}
        missing = [m for m in args.models if m not in known]
        if missing:
            print(f"qsnmc run: unknown model(s) {', '.join(missing)}; known: {', '.join(sorted(known))}",
                  file=sys.stderr)
            return 2
        entries = [known[m] for m in args.models]
    settings = RunSettings(
        seed=args.seed, budget=args.budget, timeout_s=args.timeout, memory_limit_MB=args.memory_limit,
        use_cache=not args.no_cache, jobs=args.jobs, echo=not args.quiet and args.jobs == 1 and sys.stderr.isatty(),
    )
    runner = Runner(challenge, Path(args.runs_dir), settings)
    if not args.quiet:
        print(f"Run folder: {runner.run_dir}", file=sys.stderr)

    def done(rec: dict) -> None:
        if args.quiet:
            return
        if rec["status"] == "ok":
            what = f"Γ/R = {100 * rec['performance']:.1f} %" + (" (cached)" if rec["cached"] else "")
        else:
            what = f"FAILED ({rec['reason'][:200]})"
        print(f"  {rec['model']}: {what}", file=sys.stderr)

    records = runner.run(entries, on_done=done)
    rows = ranking_rows(records)
    info = json.loads((runner.run_dir / RUN).read_text())
    print(format_table(rows, _challenge_header(info)))
    if args.json:
        _write_rows(Path(args.json), rows)
    return 0


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n")


def cmd_table(args: argparse.Namespace) -> int:
    try:
        run_dir = find_run(Path(args.runs_dir), args.run)
    except FileNotFoundError as exc:
        print(f"qsnmc table: {exc}", file=sys.stderr)
        return 2
    rows = ranking_rows(load_records(run_dir))
    info = json.loads((run_dir / RUN).read_text())
    print(format_table(rows, _challenge_header(info) + f"\nRun folder: {run_dir}"))
    if args.json:
        _write_rows(Path(args.json), rows)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qsnmc",
        description="Benchmark harness for single-neuron spike-time prediction (QSNMC 2009 rules).",
    )
    parser.add_argument("--version", action="version", version=f"qsnmc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list every model found (built-in, entry points, submissions)")
    _add_common(p)
    p.add_argument("--challenges", action="store_true", help="list the challenges instead")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="fit, predict the hidden test window, score and rank models")
    _add_common(p)
    p.add_argument("models", nargs="*", metavar="NAME", help="models to run (see `qsnmc list`)")
    p.add_argument("--all", action="store_true", help="run every model found")
    p.add_argument("--challenge", default=EMBEDDED, help=f"challenge to run on (default: {EMBEDDED})")
    p.add_argument("--seed", type=int, default=0, help="seed passed to every model (default 0)")
    p.add_argument("--budget", type=float, default=1.0,
                   help="compute scale passed to every model: 1 = each model's default fit (default 1)")
    p.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="limit per model, fit and prediction together (default 1800 s)")
    p.add_argument("--memory-limit", type=float, default=8000.0, metavar="MB",
                   help="resident-memory limit per model (default 8000 MB)")
    p.add_argument("--jobs", type=int, default=1, help="models run at once (default 1)")
    p.add_argument("--no-cache", action="store_true", help="refit even if an unchanged model was run before")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where run folders go (default ./runs)")
    p.add_argument("--json", metavar="PATH", help="also write the table's rows as a JSON list")
    p.add_argument("--quiet", action="store_true", help="print only the table")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("table", help="print the ranking table of the last run (or of RUN) without re-running")
    p.add_argument("run", nargs="?", help="run folder or its name under --runs-dir (default: the latest)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where run folders are (default ./runs)")
    p.add_argument("--json", metavar="PATH", help="also write the table's rows as a JSON list")
    p.set_defaults(func=cmd_table)

    try:
        from qsnmc.cli_data import add_data_commands
    except ImportError:  # pragma: no cover - during development only
        pass
    else:
        add_data_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
