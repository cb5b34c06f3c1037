"""Running model code where the hidden test data cannot be reached.

With bubblewrap (``bwrap``) a worker sees a fresh file-system view: the operating
system (``/usr``, ``/etc``), the Python environment, the ``qsnmc`` package, the
plugin's own code and its job folder, and nothing else of the checkout or the
user's files: no ``reference_data/``, no ``.git``, no generator, no ``runs/``, no
imported challenges. It has no network and its own process and IPC namespaces.
Without bubblewrap the worker runs as a plain subprocess and its rows are marked
as not sandboxed.
"""
from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Iterable

from qsnmc.challenges.datadir import project_root, user_data_dir

#: the whole qsnmc package (this file is qsnmc/harness/sandbox.py)
CORE_PACKAGE = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """Path of a working ``bwrap``, or None (missing, or unable to create namespaces here)."""
    exe = shutil.which("bwrap")
    if exe is None or os.environ.get("QSNMC_NO_SANDBOX") == "1":
        return None
    try:
        probe = subprocess.run(
            [exe, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if probe.returncode == 0 else None


def sandbox_home() -> Path:
    """A persistent home folder for workers (compiler caches such as Brian2's Cython cache).

    It never holds challenge data: only what workers themselves write.
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    home = Path(base) / "qsnmc" / "sandbox-home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def environment_paths(protected: Iterable[str | Path] = ()) -> list[Path]:
    """Folders of the Python environment the worker needs (interpreter, stdlib, site-packages).

    Never the current folder or the script's folder (``sys.path[0]``), nor any folder that
    holds the checkout or one of the ``protected`` paths (challenge data, run folders).
    """
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib", "include"):
        candidates.add(sysconfig.get_paths().get(key, ""))
    candidates.update(site.getsitepackages())
    candidates.update(sys.path[1:])  # entries added by the environment (.pth files, stdlib zip)
    candidates.discard(os.getcwd())
    guarded = [project_root(), Path.cwd(), user_data_dir(), *(Path(p) for p in protected)]
    out = []
    for c in candidates:
        if not c or not os.path.exists(c):
            continue
        p = Path(c).resolve()
        if any(_inside(g, p) for g in guarded):  # would expose a guarded folder whole
            continue
        if _inside(p, project_root()) and not _inside(p, Path(sys.prefix)):  # checkout code, except a venv
            continue
        out.append(p)
    return sorted(set(out))


def wrap(
    argv: list[str],
    *,
    workdir: Path,
    code_paths: Iterable[str | Path],
    read_only: Iterable[str | Path] = (),
    protected: Iterable[str | Path] = (),
) -> tuple[list[str], dict[str, str], bool]:
    """The command, environment and sandbox flag to run ``argv`` as an isolated worker.

    Args:
        argv: the worker's command line (``[sys.executable, "-m", "qsnmc.harness.worker", ...]``).
        workdir: the job folder (read-write; the worker's current directory).
        code_paths: the plugin's files and folders (read-only).
        read_only: further read-only paths (e.g. the shared input folder).
        protected: folders that must stay invisible (challenge data, run folders): no
            environment folder that contains one is exposed.

    Returns:
        ``(command, environment, sandboxed)``.
    """
    home = sandbox_home()
    env = dict(os.environ)
    env.update(HOME=str(home), PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    # the worker imports qsnmc (and built-ins beside it) from the checkout this process runs,
    # also when that is not the installed one (a git worktree run with PYTHONPATH); inside the
    # sandbox only the bound folders of that checkout exist
    env["PYTHONPATH"] = str(CORE_PACKAGE.parent)
    exe = bwrap_path()
    if exe is None:
        return argv, env, False
    cmd = [exe, "--unshare-all", "--die-with-parent", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for sys_dir in ("/usr", "/etc", "/opt"):
        if os.path.isdir(sys_dir) and not _inside(project_root(), Path(sys_dir)):
            cmd += ["--ro-bind", sys_dir, sys_dir]
    for link in ("/bin", "/lib", "/lib64", "/sbin", "/lib32"):
        if os.path.islink(link):
            cmd += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            cmd += ["--ro-bind", link, link]
    for p in environment_paths(protected):
        cmd += ["--ro-bind", str(p), str(p)]
    for p in [CORE_PACKAGE, *code_paths, *read_only]:
        cmd += ["--ro-bind", str(p), str(p)]
    cmd += ["--bind", str(home), str(home), "--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    env["TMPDIR"] = "/tmp"
    return cmd + ["--"] + argv, env, True
