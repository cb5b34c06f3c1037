"""``qsnmc new NAME``: a documented submission skeleton that runs and scores out of the box."""
from __future__ import annotations

import re
from pathlib import Path

from qsnmc.plugins import MODEL_NAME

TEMPLATE = '''"""{name}: a qsnmc submission (written by ``qsnmc new {name}``; edit freely).

Run it:     qsnmc run {name}                  (fit on 0-39 s, predict and score 39-60 s)
Sweep it:   qsnmc sweep {name}                (param_grid scored on the training window's last part)
Report:     qsnmc report                      (raster, Gamma/R with error bars, ...)

What the harness does with this file: it imports it in an isolated (sandboxed) worker
process, builds ``{cls}(seed=..., budget=..., **settings)``, calls ``fit(train)`` with the
public training data (current in pA over the whole protocol, recorded voltage in mV and
spike times in s inside the training window only), then ``predict(stimulus)`` for each
test stimulus, and scores the spike times against the hidden recordings with the
coincidence factor Gamma (+-4 ms), normalised by the cell's reliability R.

The starting model (replace it with yours): the spike-triggered average of the current
gives a linear filter; the filtered current is thresholded, with a dead time after each
spike; the threshold is the candidate with the best coincidence factor on the training
repetitions.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

import qsnmc
from qsnmc.scoring import coincidence_factor


class {cls}(qsnmc.Model):
    #: unique name in the ranking table
    name = "{name}"
    #: one line for ``qsnmc list``
    description = "{name}: spike-triggered-average filter + threshold (skeleton; edit me)"
    #: settings ``qsnmc sweep {name}`` tries (every combination); each is a keyword of __init__
    param_grid = {{"filter_ms": [10.0, 20.0, 40.0], "dead_time_ms": [5.0, 15.0]}}

    def __init__(self, seed: int = 0, budget: float = 1.0, filter_ms: float = 20.0, dead_time_ms: float = 5.0) -> None:
        """Args: seed (use it for every random choice), budget (compute scale, 1.0 = the
        default fit; tests use ~0.05), filter_ms (length of the filter, ms), dead_time_ms
        (silence after a spike, ms)."""
        super().__init__(seed=seed, budget=budget)
        self.filter_ms = float(filter_ms)
        self.dead_time_ms = float(dead_time_ms)

    # -- fitting: training window only --------------------------------------------------------
    def fit(self, train: qsnmc.TrainingData) -> dict:
        """Fit the filter and the threshold; return the fit record (JSON: parameters with units)."""
        dt = train.dt_s
        n_filter = max(2, int(round(self.filter_ms * 1e-3 / dt)))
        sta = np.zeros(n_filter)
        n_spikes = 0
        for stim in train.stimuli:
            for spikes in stim.spike_times_s:
                k = np.round(spikes / dt).astype(int)
                k = k[k >= n_filter]
                for lag in range(n_filter):  # current lag samples before each spike
                    sta[lag] += stim.current_pA[k - lag].sum()
                n_spikes += k.size
        if n_spikes == 0:
            raise ValueError("no spikes in the training window: nothing to fit")
        self.filter = (sta / n_spikes - np.mean([s.window_current_pA.mean() for s in train.stimuli]))
        self.filter /= np.abs(self.filter).sum()
        # threshold: candidates from the median to the 99.9th percentile of the drive, kept by training Gamma
        rates, drives = [], []
        for stim in train.stimuli:
            drives.append(self._drive(stim.current_pA, dt)[stim.window_slice])
            rates.append(np.mean([len(s) for s in stim.spike_times_s]) / (stim.window_s[1] - stim.window_s[0]))
        rate_hz = float(np.mean(rates))
        curve = []
        best = (-np.inf, 0.0)
        n_try = max(3, int(round(12 * self.budget)))
        all_drive = np.concatenate(drives)
        for above in np.geomspace(0.001, 0.5, n_try):  # fraction of the time the drive spends above theta
            theta = float(np.quantile(all_drive, 1.0 - above))
            gammas = []
            for stim, x in zip(train.stimuli, drives):
                pred = stim.window_s[0] + self._crossings(x, theta, dt) * dt
                gammas += [coincidence_factor(r, pred, train.delta_s, duration=stim.window_s[1] - stim.window_s[0])
                           for r in stim.spike_times_s]
            curve.append(float(np.mean(gammas)))
            if curve[-1] > best[0]:
                best = (curve[-1], theta)
        self.theta = best[1]
        return {{"filter_ms": self.filter_ms, "dead_time_ms": self.dead_time_ms, "threshold": self.theta,
                 "recorded_rate_hz": rate_hz, "training_gamma": best[0],
                 "gamma_curve": curve}}  # training Gamma per threshold candidate (drawn by qsnmc report)

    def _drive(self, current_pA: np.ndarray, dt: float) -> np.ndarray:
        """The current filtered by the fitted filter (causal), same length as the current."""
        return fftconvolve(current_pA - current_pA.mean(), self.filter)[: current_pA.size]

    def _crossings(self, x: np.ndarray, theta: float, dt: float) -> np.ndarray:
        """Sample indices where ``x`` rises through ``theta``, at most one per dead time."""
        ups = np.flatnonzero((x[:-1] < theta) & (x[1:] >= theta)) + 1
        dead = int(round(self.dead_time_ms * 1e-3 / dt))
        kept: list[int] = []
        for k in ups:
            if not kept or k - kept[-1] >= dead:
                kept.append(int(k))
        return np.asarray(kept, dtype=np.int64)

    # -- prediction: the test window ----------------------------------------------------------
    def predict(self, stimulus: qsnmc.Stimulus) -> np.ndarray:
        """Spike times (s, absolute protocol time) inside ``stimulus.window_s``, strictly increasing.

        Deterministic: one array, used for every repetition (a stochastic model returns a
        list of ``stimulus.n_repetitions`` arrays).
        """
        dt = stimulus.dt_s
        t = self._crossings(self._drive(stimulus.current_pA, dt), self.theta, dt) * dt
        start, stop = stimulus.window_s
        return t[(t >= start) & (t <= stop)]


@qsnmc.hookimpl
def qsnmc_register_models() -> list:
    """Every model class of this file (names must be unique across all plugins)."""
    return [{cls}]
'''


def class_name(name: str) -> str:
    """``my-model`` -> ``MyModel``."""
    parts = re.split(r"[^A-Za-z0-9]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return out if out[:1].isalpha() else "Model" + out


def write_skeleton(name: str, submissions_dir: Path) -> Path:
    """Write ``submissions_dir/<name>.py`` (dashes become underscores) and return its path.

    Raises:
        ValueError: ``name`` is not a valid model name.
        FileExistsError: the file exists (it is never overwritten).
    """
    if not MODEL_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid model name (letters, digits, '-', '_', '.'; up to 64)")
    path = Path(submissions_dir) / (re.sub(r"\W", "_", name) + ".py")
    if path.exists():
        raise FileExistsError(f"{path} exists: choose another name or edit that file")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(name=name, cls=class_name(name)))
    return path
