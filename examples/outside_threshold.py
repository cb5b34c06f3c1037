"""A model made outside qsnmc: reads a public kit, fits with NumPy, writes spike-time files to score.

    qsnmc data export-kit embedded kit/                # the organiser: the public kit
    python examples/outside_threshold.py kit/ predictions/
    qsnmc score predictions/ --challenge embedded --label my-threshold

It uses nothing of qsnmc: only the kit's files (kit.json, <stimulus>/current.txt,
<stimulus>/spiketimes-<r>.txt) and NumPy. The model is the example submission's idea: the
injected current, low-pass filtered with time constant tau, spikes when it rises through a
threshold theta, then stays silent for a dead time. The fit is a grid search over tau, dead time
and theta (a percentile of the filtered training current) for the largest mean coincidence
factor Gamma against the recorded training spikes. Units: s, pA.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

TAUS_S = (0.003, 0.01, 0.03)
DEAD_TIMES_S = (0.005, 0.02)
LEVELS = tuple(np.linspace(80.0, 99.5, 14))


def lowpass(current_pA: np.ndarray, dt_s: float, tau_s: float) -> np.ndarray:
    """Causal exponential low-pass filter (unit DC gain, kernel cut at 10 tau), by FFT convolution (pA)."""
    kernel = np.exp(-np.arange(int(10 * tau_s / dt_s) + 1) * dt_s / tau_s)
    kernel /= kernel.sum()
    n = current_pA.size + kernel.size - 1
    size = 1 << (n - 1).bit_length()
    padded = np.concatenate([np.full(kernel.size - 1, current_pA[0]), current_pA])  # steady state before t = 0
    out = np.fft.irfft(np.fft.rfft(padded, size) * np.fft.rfft(kernel, size), size)
    return out[kernel.size - 1:kernel.size - 1 + current_pA.size]


def crossings(x: np.ndarray, dt_s: float, theta: float, dead_s: float, window_s: tuple[float, float]) -> np.ndarray:
    """Upward crossings (s) of ``x`` through ``theta`` inside the window, at most one per dead time."""
    times = (np.flatnonzero((x[:-1] < theta) & (x[1:] >= theta)) + 1) * dt_s
    kept: list[float] = []
    for t in times[(times >= window_s[0]) & (times <= window_s[1])]:
        if not kept or t - kept[-1] >= dead_s:
            kept.append(float(t))
    return np.asarray(kept)


def gamma(data: np.ndarray, model: np.ndarray, delta_s: float, duration_s: float) -> float:
    """Coincidence factor of a model train against a recorded one (coincidences within ``delta_s``)."""
    if model.size == 0:
        return 0.0
    nu = model.size / duration_s
    used = np.zeros(model.size, bool)
    n_coinc = 0
    for t in data:
        j = np.searchsorted(model, t - delta_s)
        while j < model.size and model[j] <= t + delta_s and used[j]:
            j += 1
        if j < model.size and model[j] <= t + delta_s:
            used[j] = True
            n_coinc += 1
    return (n_coinc - 2 * nu * delta_s * data.size) * 2 / ((data.size + model.size) * (1 - 2 * nu * delta_s))


def fit(training: list[dict], dt_s: float, delta_s: float) -> dict:
    """The grid point of highest mean Gamma on the training windows.

    Args:
        training: per training stimulus ``{"current_pA", "window_s", "spike_times_s"}`` (one array per repetition).
    """
    best = {"gamma": -np.inf}
    for tau in TAUS_S:
        filtered = [lowpass(s["current_pA"], dt_s, tau) for s in training]
        inside = np.concatenate([x[int(round(s["window_s"][0] / dt_s)):int(round(s["window_s"][1] / dt_s))]
                                 for x, s in zip(filtered, training)])
        for level in LEVELS:
            theta = float(np.percentile(inside, level))
            for dead in DEAD_TIMES_S:
                scores = [gamma(rec, crossings(x, dt_s, theta, dead, s["window_s"]), delta_s,
                                s["window_s"][1] - s["window_s"][0])
                          for x, s in zip(filtered, training) for rec in s["spike_times_s"]]
                if np.mean(scores) > best["gamma"]:
                    best = {"gamma": float(np.mean(scores)), "tau_s": tau, "theta_pA": theta, "dead_s": dead}
    return best


def predict(current_pA: np.ndarray, dt_s: float, window_s: tuple[float, float], params: dict) -> np.ndarray:
    """Predicted spike times (s) inside ``window_s``."""
    return crossings(lowpass(current_pA, dt_s, params["tau_s"]), dt_s, params["theta_pA"], params["dead_s"], window_s)


def main(kit: Path, out: Path) -> None:
    info = json.loads((kit / "kit.json").read_text())
    dt_s = info["dt_s"]
    current = {s["name"]: np.loadtxt(kit / s["current"], ndmin=1) for s in info["stimuli"]}
    training = [{"current_pA": current[s["name"]], "window_s": tuple(s["train_window_s"]),
                 "spike_times_s": [np.loadtxt(kit / f, ndmin=1) for f in s["spike_times"]]}
                for s in info["stimuli"] if s["train_window_s"]]
    params = fit(training, dt_s, info["delta_s"])
    print(f"fitted: tau {1e3 * params['tau_s']:g} ms, theta {params['theta_pA']:.1f} pA, dead time "
          f"{1e3 * params['dead_s']:g} ms; Gamma on the training windows {params['gamma']:.3f}")
    out.mkdir(parents=True, exist_ok=True)
    for s in info["stimuli"]:
        if s["test_window_s"]:
            times = predict(current[s["name"]], dt_s, tuple(s["test_window_s"]), params)
            np.savetxt(out / f"{s['name']}.txt", times, fmt="%.17g", header="unit: s", comments="# ")
            print(f"{s['name']}: {times.size} spikes in {s['test_window_s'][0]:g}-{s['test_window_s'][1]:g} s")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python outside_threshold.py KIT_DIR OUT_DIR")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
