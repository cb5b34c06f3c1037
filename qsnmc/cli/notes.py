"""What the commands say beyond their results: after a run's or a sweep's table, where a failed row's
details are and what a cached row did not do (no fit ran, so the time and memory limits did not
apply to it); and argparse's own errors, in one line like the checked ones."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable, NoReturn

from qsnmc.harness.runstore import RECORD, record_dir

#: the worker's output beside a row's record
WORKER_LOG = "worker.log"


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose own errors (a missing argument, a bad choice or type) are one line, like
    the commands' checked ones: ``qsnmc run: argument --jobs: ...``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class DefaultNumber(float):
    """An option's default number, told apart from the same number given on the command line."""


def failed_notes(run_dir: Path, records: Iterable[dict[str, Any]]) -> list[str]:
    """One line per failed row: its stage, and the files that hold its traceback and the worker's output."""
    lines = []
    for r in records:
        if r.get("status") == "ok":
            continue
        folder = record_dir(run_dir, r)
        found = [folder / RECORD] if (folder / RECORD).is_file() else sorted(run_dir.rglob(f"{r['model']}/{RECORD}"))
        what = ("traceback" if r.get("traceback") else "reason") + (" and log tail" if r.get("log_tail") else "")
        where = [f"{path} ({what})" for path in found[:1]] + \
                [f"{path.parent / WORKER_LOG} (the worker's output)" for path in found[:1]
                 if (path.parent / WORKER_LOG).is_file()]
        seed = f" seed {r.get('seed')}" if folder.name.startswith("seed-") else ""
        lines.append(f"{r['model']}{seed} failed at {r.get('stage') or 'start'}: details in "
                     + (" and ".join(where) or f"its record under {run_dir}"))
    return lines


def cached_notes(records: Iterable[dict[str, Any]], timeout_s: float, memory_limit_MB: float) -> list[str]:
    """A line when a limit given on the command line did not apply because rows came from the cache."""
    given = [f"--{flag} {value:g}" for flag, value in (("timeout", timeout_s), ("memory-limit", memory_limit_MB))
             if not isinstance(value, DefaultNumber)]
    cached = sorted({r["model"] for r in records if r.get("cached")})
    if not given or not cached:
        return []
    return [f"note: {', '.join(cached)} reused a cached prediction (no fit ran), so {' and '.join(given)} did not "
            "apply to it; --no-cache refits under the limits"]


def print_notes(run_dir: Path, records: list[dict[str, Any]], args: Any) -> None:
    """Print :func:`failed_notes` and :func:`cached_notes` on stderr."""
    import sys

    lines = failed_notes(run_dir, records) + cached_notes(records, args.timeout, args.memory_limit)
    for line in lines:
        print(line, file=sys.stderr)
