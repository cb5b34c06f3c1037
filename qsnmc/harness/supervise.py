"""Running a worker process under a wall-clock limit and a memory limit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.2
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
#: a worker's log keeps its first and its last this many bytes of output; the middle is counted, not kept
LOG_HEAD_BYTES = 1_000_000
LOG_TAIL_BYTES = 1_000_000
#: bubblewrap exits with 128 + N when the process inside was killed by signal N
SIGNAL_EXIT_BASE = 128


@dataclass
class Outcome:
    """How a supervised process ended.

    Attributes:
        returncode: exit status (negative: killed by that signal).
        reason: ``""`` for a normal exit, else why it was stopped ("timeout", "memory").
        dropped_bytes: output beyond the log's head and tail, counted but not kept.
        wall_s: wall-clock time (s).
        peak_rss_MB: the largest resident memory of its whole process group seen (MB).
        log_tail: the last lines of its output.
    """

    returncode: int
    reason: str
    wall_s: float
    peak_rss_MB: float
    log_tail: str
    dropped_bytes: int = 0

    def describe_exit(self, sandboxed: bool = False) -> str:
        """How the process ended, in words: ``exit status 3``, ``killed by SIGSEGV``, ...

        Args:
            sandboxed: the process ran under bubblewrap, which reports a signal N as exit status 128 + N.
        """
        return describe_exit(self.returncode, sandboxed)


def describe_exit(returncode: int | None, sandboxed: bool = False) -> str:
    """``exit status N``, or ``killed by SIGNAME`` (SIGKILL with a hint: the kernel's OOM killer sends it)."""
    if returncode is None:
        return "unknown exit status"
    signum = -returncode if returncode < 0 else (returncode - SIGNAL_EXIT_BASE if sandboxed and returncode > SIGNAL_EXIT_BASE else 0)
    if signum <= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"killed by {name}" + (" (memory limit?)" if signum == signal.SIGKILL else "")


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


class BoundedLog:
    """A log file that keeps the first ``head`` and the last ``tail`` bytes of a stream.

    Output past the head is held in a ring of chunks of at most ``tail`` bytes; when the
    stream ends, a line saying how many bytes were dropped is written, then the tail.
    """

    def __init__(self, path: Path, head: int = LOG_HEAD_BYTES, tail: int = LOG_TAIL_BYTES) -> None:
        self.path, self.head, self.tail = path, head, tail
        self.written = 0
        self.dropped = 0
        self._ring: deque[bytes] = deque()
        self._ring_bytes = 0
        self._file = open(path, "ab")

    def write(self, chunk: bytes) -> None:
        room = self.head - self.written
        if room > 0:
            self._file.write(chunk[:room])
            self._file.flush()
            self.written += min(room, len(chunk))
            chunk = chunk[room:]
        if not chunk:
            return
        self._ring.append(chunk)
        self._ring_bytes += len(chunk)
        while self._ring_bytes > self.tail:
            first = self._ring[0]
            excess = self._ring_bytes - self.tail
            if len(first) <= excess:
                self._ring.popleft()
                self._ring_bytes -= len(first)
                self.dropped += len(first)
            else:
                self._ring[0] = first[excess:]
                self._ring_bytes -= excess
                self.dropped += excess

    def close(self) -> None:
        if self.dropped:
            self._file.write(f"\n[qsnmc: {self.dropped} bytes of output dropped here; the log keeps the first "
                             f"{self.head} and the last {self.tail} bytes]\n".encode())
        for chunk in self._ring:
            self._file.write(chunk)
        self._file.close()


def _pump(stream, log: BoundedLog, echo: bool) -> None:
    try:
        for chunk in iter(lambda: stream.read1(65536), b""):
            log.write(chunk)
            if echo:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()
    finally:
        log.close()


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

    Its output goes to ``log_path``, bounded by :class:`BoundedLog` (and whole to stderr when ``echo``).
    """
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log = BoundedLog(log_path)
    pump = threading.Thread(target=_pump, args=(proc.stdout, log, echo), daemon=True)
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
    return Outcome(proc.returncode, reason, time.monotonic() - start, peak / 1e6, tail(log_path), log.dropped)


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
