"""Where challenges live: the embedded one in the checkout, imported ones in the user's data folder."""
from __future__ import annotations

import os
from pathlib import Path

#: name of the challenge embedded in ``reference_data/``
EMBEDDED = "embedded"


def project_root() -> Path:
    """The checkout holding the ``qsnmc`` package (where ``reference_data/`` is)."""
    return Path(__file__).resolve().parents[2]  # <root>/qsnmc/challenges/datadir.py


def embedded_challenge_dir() -> Path:
    """``reference_data/embedded`` of this checkout."""
    return project_root() / "reference_data" / EMBEDDED


def user_data_dir() -> Path:
    """``$QSNMC_DATA_DIR``, else ``$XDG_DATA_HOME/qsnmc``, else ``~/.local/share/qsnmc``."""
    if os.environ.get("QSNMC_DATA_DIR"):
        return Path(os.environ["QSNMC_DATA_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "qsnmc"


def challenges_dir() -> Path:
    """Where imported challenges are written: ``<user data dir>/challenges``."""
    return user_data_dir() / "challenges"


def challenge_dir(name: str) -> Path:
    """The folder of a challenge by name (``embedded`` or an imported one).

    The embedded challenge is read from the checkout's ``reference_data/`` (qsnmc is
    installed in editable mode from a clone); a non-editable install, which never
    carries the data, looks for a copy in the user's challenges folder instead.
    """
    if name == EMBEDDED and (embedded_challenge_dir() / "manifest.json").is_file():
        return embedded_challenge_dir()
    return challenges_dir() / name


def available_challenges() -> list[str]:
    """Names of every challenge found: the embedded one first, then imported ones."""
    names = [EMBEDDED] if (challenge_dir(EMBEDDED) / "manifest.json").is_file() else []
    root = challenges_dir()
    if root.is_dir():
        names += sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file() and p.name not in names)
    return names
