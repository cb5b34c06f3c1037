"""qsnmc report: an HTML page with embedded figures, checked in a real headless Chromium."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess

import numpy as np
import pytest

from conftest import run_cli
from qsnmc.cli.report import training_curves


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
    assert "No plugin declared a training curve" in text  # the baselines declare none
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


def test_only_the_declared_training_curves_are_drawn():
    # an AdEx-like record: lists per generation that are not curves of training, and the declared curves
    record = {"blown_up_per_generation": [0, 0, 0, 0], "seconds_per_generation": [1.2, 1.1, 1.3, 1.2],
              "loss_curve": [3.0, 2.0, 1.5], "training": {"best_gamma_per_generation": [0.1, 0.2, 0.3]},
              "curves": {"best objective": {"x": [1, 2, 3], "y": [0.2, 0.3, 0.35], "x_label": "generation",
                                            "y_label": "Γ/R − penalty"},
                         "no labels": {"x": [0, 1], "y": [1.0, 0.5]},
                         "unequal": {"x": [1, 2, 3], "y": [1.0, 2.0]},
                         "not numbers": {"x": [1, 2], "y": ["a", "b"]},
                         "not finite": {"x": [1, 2], "y": [1.0, float("nan")]}}}
    assert training_curves(record) == {
        "best objective": {"x": [1.0, 2.0, 3.0], "y": [0.2, 0.3, 0.35], "x_label": "generation",
                           "y_label": "Γ/R − penalty"},
        "no labels": {"x": [0.0, 1.0], "y": [1.0, 0.5], "x_label": "step", "y_label": "no labels"},
    }
    assert training_curves({"loss_curve": [3.0, 2.0, 1.5]}) == {} and training_curves(None) == {}


def _figures(monkeypatch) -> list:
    """Figures the report's drawing functions make, kept open instead of written as PNG."""
    from qsnmc.cli import report

    figs = []
    monkeypatch.setattr(report, "_png", lambda fig: figs.append(fig) or b"")
    return figs


def _rows_of(n_models: int, n_seeds: int) -> tuple[list[dict], list[dict]]:
    from qsnmc.scoring.table import ranking_rows

    rng = np.random.default_rng(0)
    records = [{"model": f"model-{m}", "seed": s, "status": "ok", "performance": 0.1 * m + 0.02 * s,
                "error": 0.01, "gamma": 0.07 * m, "scores": [{"stimulus": "A", "gammas": list(rng.uniform(0, 0.8, 13))}]}
               for m in range(n_models) for s in range(n_seeds)]
    return ranking_rows(records), records


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_legends_lie_outside_the_data(monkeypatch, n_seeds):
    import matplotlib

    matplotlib.use("Agg")
    from qsnmc.cli import report

    figs = _figures(monkeypatch)
    rows, records = _rows_of(10, n_seeds)
    report.performance_figure(rows, 0.76)
    report.repetition_figure(rows, records)
    for fig in figs:
        fig.canvas.draw()
        ax = fig.axes[0]
        box, legend = ax.get_window_extent(), ax.get_legend().get_window_extent()
        assert legend.x0 >= box.x1, (legend, box)  # entirely to the right of the axes
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(labels) >= (10 if fig is figs[1] else 2)
    seed_points = [c for c in figs[0].axes[0].collections if c.get_label() == "each seed"]
    assert len(seed_points) == (1 if n_seeds > 1 else 0)
    if n_seeds > 1:
        assert len(seed_points[0].get_offsets()) == 10 * n_seeds  # every seed of every model drawn


def test_the_curves_figure_draws_each_seeds_curve_with_its_labels(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from qsnmc.cli import report

    figs = _figures(monkeypatch)
    curve = {"x": [1.0, 2.0], "y": [2.0, 1.0], "x_label": "epoch", "y_label": "loss (nats)"}
    report.curves_figure({"gru": {"loss": {0: curve, 1: curve}}, "adex": {"best": {0: curve}}})
    axes = [ax for ax in figs[0].axes if ax.axison]
    assert [ax.get_title() for ax in axes] == ["gru: loss", "adex: best"]
    assert [len(ax.lines) for ax in axes] == [2, 1]
    assert axes[0].get_xlabel() == "epoch" and axes[0].get_ylabel() == "loss (nats)"


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


def test_the_repetition_figure_has_a_panel_per_test_stimulus_with_mathtext_labels(monkeypatch):
    """Each test stimulus gets its panel, drawing that stimulus' Gamma_i (not the first stimulus' everywhere);
    the axis labels are mathtext (a subscripted Gamma), not the characters 'Γ_i'."""
    import matplotlib

    matplotlib.use("Agg")
    from qsnmc.cli import report
    from qsnmc.scoring.table import ranking_rows

    figs = _figures(monkeypatch)
    gammas = {("lif", "A"): [0.5, 0.6, 0.4], ("lif", "B"): [0.1, 0.2, 0.3],
              ("mat", "A"): [0.7, 0.7, 0.8], ("mat", "B"): [0.0, -0.1, 0.05]}
    records = [{"model": m, "seed": 0, "status": "ok", "performance": p, "error": 0.01, "gamma": p,
                "scores": [{"stimulus": s, "gammas": gammas[(m, s)]} for s in ("A", "B")]}
               for m, p in (("lif", 0.4), ("mat", 0.3))]
    report.repetition_figure(ranking_rows(records), records)
    fig = figs[0]
    fig.canvas.draw()  # the mathtext parses
    assert len(fig.axes) == 2
    for ax, stimulus in zip(fig.axes, ("A", "B")):
        assert f"test stimulus {stimulus}" in ax.get_title()
        drawn = {line.get_label(): list(line.get_ydata()) for line in ax.lines if not line.get_label().startswith("_")}
        assert drawn == {m: gammas[(m, stimulus)] for m in ("lif", "mat")}
        assert ax.get_ylabel() == r"$\Gamma_i$" and r"$\Gamma_i$" in ax.get_title()
        assert "Γ_i" not in ax.get_ylabel() + ax.get_title() + ax.get_xlabel()


@pytest.mark.parametrize("stretch", [["--from", "3"], ["--from", "15", "--to", "25"]], ids=["from", "to"])
def test_a_stretch_outside_the_test_window_is_refused(reported, data_dir, stretch):
    work, _ = reported
    proc = run_cli(["report", *stretch, "--out", "elsewhere"], cwd=work, data_dir=data_dir)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"{stretch[-2]} {stretch[-1]} s: outside the test window 14-20 s of stimulus A" in proc.stderr
    assert not (work / "elsewhere").exists()
