"""Running a worker process under a wall-clock limit and a memory limit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.2
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Outcome:
    """How a supervised process ended.

    Attributes:
        returncode: exit status (negative: killed by that signal).
        reason: ``""`` for a normal exit, else why it was stopped ("timeout", "memory").
        wall_s: wall-clock time (s).
        peak_rss_MB: the largest resident memory of its whole process group seen (MB).
        log_tail: the last lines of its output.
    """

    returncode: int
    reason: str
    wall_s: float
    peak_rss_MB: float
    log_tail: str


def group_rss_bytes(pgid: int) -> int:
    """Resident memory (bytes) of every process in a process group, from /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid:  # field 5 of stat: pgrp
            total += int(fields[21]) * PAGE_BYTES  # field 24: rss in pages
    return total


def _pump(stream, log_path: Path, echo: bool) -> None:
    with open(log_path, "ab") as log:
        for line in iter(stream.readline, b""):
            log.write(line)
            log.flush()
            if echo:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()


def run_supervised(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    timeout_s: float,
    memory_limit_MB: float,
    echo: bool = False,
) -> Outcome:
    """Run ``cmd`` in its own process group; kill the group past the time or memory limit.

    Its output goes to ``log_path`` (and to stderr when ``echo``).
    """
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pump = threading.Thread(target=_pump, args=(proc.stdout, log_path, echo), daemon=True)
    pump.start()
    reason, peak = "", 0
    limit = memory_limit_MB * 1e6
    while proc.poll() is None:
        time.sleep(POLL_S)
        rss = group_rss_bytes(proc.pid)
        peak = max(peak, rss)
        if time.monotonic() - start > timeout_s:
            reason = "timeout"
        elif rss > limit:
            reason = "memory"
        if reason:
            _kill_group(proc)
            break
    proc.wait()
    _kill_group(proc)  # anything it left behind in its group
    pump.join(timeout=5)
    return Outcome(proc.returncode, reason, time.monotonic() - start, peak / 1e6, tail(log_path))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, n_lines: int = 15, max_chars: int = 3000) -> str:
    """The last lines of a text file (empty if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-n_lines:])[-max_chars:]
