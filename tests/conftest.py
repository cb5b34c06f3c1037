"""Shared fixtures: a small synthetic challenge in a private data folder, the embedded challenge, and a CLI runner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import write_synthetic_challenge  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
FIXTURE_SUBMISSIONS = Path(__file__).parent / "fixtures" / "submissions"
SHARED = PROJECT.parent / "shared"
EMBEDDED = PROJECT / "reference_data" / "embedded"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A QSNMC_DATA_DIR holding the synthetic challenges ``synthetic-test`` (one stimulus) and
    ``synthetic-two`` (two stimuli)."""
    root = tmp_path_factory.mktemp("qsnmc-data")
    write_synthetic_challenge(root / "challenges" / "synthetic-test")
    write_synthetic_challenge(root / "challenges" / "synthetic-two", "synthetic-two", n_stimuli=2)
    return root


@pytest.fixture(scope="session")
def embedded_challenge():
    """The embedded challenge of ``reference_data/embedded`` (the test is skipped where it is absent)."""
    if not (EMBEDDED / "manifest.json").is_file():
        pytest.skip("embedded challenge not generated (reference_data/embedded/manifest.json absent)")
    from qsnmc import load_challenge

    return load_challenge(EMBEDDED)


def run_cli(args: list[str], *, cwd: Path, data_dir: Path | None = None, env: dict | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m qsnmc.cli ARGS`` as a real subprocess (``data_dir``, when given, wins over a
    ``QSNMC_DATA_DIR`` in ``env`` or in this process' environment)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    if data_dir is not None:
        full_env["QSNMC_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "qsnmc.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def read_rows(path: Path) -> dict[str, dict]:
    return {r["model"]: r for r in json.loads(path.read_text())}
