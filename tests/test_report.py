"""qsnmc report: an HTML page with embedded figures, checked in a real headless Chromium."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess

import numpy as np
import pytest

from conftest import run_cli
from qsnmc.cli.report import find_curves


@pytest.fixture(scope="module")
def reported(tmp_path_factory, data_dir):
    work = tmp_path_factory.mktemp("report")
    (work / "submissions").mkdir()
    proc = run_cli(["run", "poisson", "lif", "--challenge", "synthetic-test", "--jobs", "2", "--quiet"],
                   cwd=work, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(["report", "--from", "14.5", "--to", "16.5"], cwd=work, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    return work, work / proc.stdout.strip()


def test_report_writes_html_with_embedded_figures_and_pngs_beside_it(reported):
    _, html_path = reported
    text = html_path.read_text()
    for name in ("raster.png", "performance.png", "per_repetition.png"):
        png = (html_path.parent / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
        assert base64.b64encode(png).decode() in text  # self-contained: the same image inline
    assert "lif" in text and "poisson" in text and "14.5-16.5 s" in text
    assert "No plugin recorded a training curve" in text  # the baselines record none
    assert not re.search(r"src=['\"](?!data:)", text)  # nothing fetched from elsewhere


def test_a_multi_stimulus_run_gets_a_raster_per_test_stimulus(tmp_path, data_dir):
    (tmp_path / "submissions").mkdir()
    proc = run_cli(["run", "poisson", "lif", "--challenge", "synthetic-two", "--jobs", "2", "--quiet"],
                   cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "spikes pred/rec" in proc.stdout and "A " in proc.stdout and "B " in proc.stdout  # counts per stimulus
    proc = run_cli(["report"], cwd=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    html = tmp_path / proc.stdout.strip()
    assert (html.parent / "raster_A.png").is_file() and (html.parent / "raster_B.png").is_file()
    assert "stimulus A" in html.read_text() and "stimulus B" in html.read_text()


def test_a_stochastic_entrys_trains_are_each_labelled(data_dir, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qsnmc import load_challenge
    from qsnmc.cli import report

    labels = []
    real_subplots = plt.subplots

    def spy(*args, **kwargs):
        fig, axes = real_subplots(*args, **kwargs)
        real_set = axes[1].set_yticks
        axes[1].set_yticks = lambda ticks, names, **kw: labels.extend(names) or real_set(ticks, names, **kw)
        return fig, axes

    monkeypatch.setattr(plt, "subplots", spy)
    challenge = load_challenge(data_dir / "challenges" / "synthetic-test")
    trains = [np.array([14.6, 15.0]), np.array([14.7]), np.array([15.2])]
    report.raster_figure(challenge, "A", {"poisson": trains, "lif": [np.array([14.8])]}, 14.5, 16.5)
    assert [name for name in labels if not name.startswith("rec")] == ["poisson #1", "poisson #2", "poisson #3", "lif"]


def test_report_of_a_missing_run_is_a_clear_error(tmp_path):
    proc = run_cli(["report"], cwd=tmp_path)
    assert proc.returncode == 2 and "no run yet" in proc.stderr


def test_training_curves_are_found_in_nested_fit_records():
    record = {"loss_curve": [3.0, 2.0, 1.5], "training": {"best_gamma_per_generation": [0.1, 0.2, 0.3, 0.4]},
              "tau_ms": 12.0, "grid_history": ["a", "b", "c"], "short_curve": [1.0, 2.0]}
    assert find_curves(record) == {"loss_curve": [3.0, 2.0, 1.5],
                                   "training.best_gamma_per_generation": [0.1, 0.2, 0.3, 0.4]}


def _browser() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(reported, tmp_path):
    import matplotlib.image

    _, html_path = reported
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,2400",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", html_path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert shot.is_file(), proc.stderr[-2000:]
    img = matplotlib.image.imread(shot)[..., :3]
    assert img.shape[0] >= 2000 and img.shape[1] >= 1100
    ink = np.any(img < 0.9, axis=-1)
    assert ink.mean() > 0.05, "the page rendered (almost) blank"
    # the figures are drawn, not only the text: the raster's and the bars' blue (tab:blue family) is on screen
    blue = (img[..., 2] > 0.6) & (img[..., 0] < 0.4) & (img[..., 1] > 0.35) & (img[..., 1] < 0.7)
    assert blue.sum() > 2000, blue.sum()
    # and they lie below the first screenful of text: images were decoded and laid out
    rows_with_blue = np.flatnonzero(blue.any(axis=1))
    assert rows_with_blue.max() - rows_with_blue.min() > 600
