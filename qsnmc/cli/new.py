"""``qsnmc new NAME``: a copy of the example submission, renamed, that runs and scores out of the box.

The one source of the contributor's example is ``submissions/example_threshold.py`` of the
checkout: a real plugin that ``qsnmc run --all`` runs and the tests exercise. ``qsnmc new``
copies it with its model name, class name and first docstring line replaced.
"""
from __future__ import annotations

import re
from pathlib import Path

from qsnmc.challenges.datadir import project_root
from qsnmc.harness.plugins import MODEL_NAME

#: the example submission, and the names in it that ``qsnmc new`` replaces
EXAMPLE = Path("submissions") / "example_threshold.py"
EXAMPLE_NAME = "example-threshold"
EXAMPLE_CLASS = "ExampleThreshold"
#: the example's description line: what ``qsnmc list`` shows; a copy must not call itself the example
EXAMPLE_DESCRIPTION = re.compile(r'^(\s*description = )"example submission: ([^"]*)"', re.MULTILINE)


def class_name(name: str) -> str:
    """``my-model`` -> ``MyModel``."""
    parts = re.split(r"[^A-Za-z0-9]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return out if out[:1].isalpha() else "Model" + out


def example_path() -> Path:
    """The example submission of this checkout.

    Raises:
        FileNotFoundError: qsnmc is not installed from a clone (the example is not in the wheel).
    """
    path = project_root() / EXAMPLE
    if not path.is_file():
        raise FileNotFoundError(f"qsnmc new copies {EXAMPLE} of a qsnmc clone, and there is none at {path}: "
                                "install qsnmc from a clone with pip install -e")
    return path


def skeleton_text(name: str) -> str:
    """The example submission's code with the model called ``name``."""
    text = example_path().read_text()
    first, rest = text.split("\n", 1)
    if not first.startswith(f'"""{EXAMPLE_NAME}:'):
        raise ValueError(f"{EXAMPLE} must open with a docstring line naming {EXAMPLE_NAME!r}")
    first = f'"""{name}: a qsnmc submission, started from the example by ``qsnmc new {name}`` (edit freely).'
    rest = rest.replace(EXAMPLE_CLASS, class_name(name)).replace(EXAMPLE_NAME, name)
    rest, n = EXAMPLE_DESCRIPTION.subn(r'\1"\2 (started from the example; say what your model is)"', rest, count=1)
    if n != 1:
        raise ValueError(f'{EXAMPLE} must set description = "example submission: ..."')
    return first + "\n" + rest


def skeleton_path(name: str, submissions_dir: Path) -> Path:
    """Where ``qsnmc new NAME`` writes: ``submissions_dir/<name>.py`` (dashes become underscores)."""
    return Path(submissions_dir) / (re.sub(r"\W", "_", name) + ".py")


def check_new(name: str, submissions_dir: Path) -> None:
    """Refuse, before anything else, a name that is not a model name or whose file exists.

    Raises:
        ValueError: ``name`` is not a valid model name.
        FileExistsError: the file exists (it is never overwritten).
    """
    if not MODEL_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid model name (letters, digits, '-', '_', '.'; up to 64)")
    path = skeleton_path(name, submissions_dir)
    if path.exists():
        raise FileExistsError(f"{path} exists: choose another name or edit that file")


def write_skeleton(name: str, submissions_dir: Path) -> Path:
    """Write ``submissions_dir/<name>.py`` (dashes become underscores) and return its path.

    Raises:
        ValueError: ``name`` is not a valid model name.
        FileExistsError: the file exists (it is never overwritten).
        FileNotFoundError: no example to copy (see :func:`example_path`).
    """
    check_new(name, submissions_dir)
    path = skeleton_path(name, submissions_dir)
    text = skeleton_text(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
