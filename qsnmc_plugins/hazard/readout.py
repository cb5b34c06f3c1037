"""Deterministic readout: spike times from a hazard per bin, and its choice on held-out data.

A spike is placed at each peak of the Gaussian-smoothed hazard that rises above a
threshold, peaks at least a refractory gap apart; its time is the hazard-weighted mean
time of the bins around the peak (inside the peak's own +-1 bin), so it may fall between
bin centres.

The threshold is either one fixed level, or set per window so that the number of spikes
matches the hazard's own expected count (its sum over the window's bins, spikes per
repetition) times a factor: that rule needs nothing but the model's output, and lets one
readout serve stimuli whose rates differ several-fold.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qsnmc import setting


@dataclass(frozen=True)
class ReadoutSettings:
    """The readout grid :func:`choose_readout` searches; a recurrent entry's settings derive from it."""

    readout_smoothing_ms: tuple[float, ...] = setting(
        (0.0, 1.0, 2.0), "Gaussian smoothing SDs of the hazard tried by the readout (ms)")
    readout_refractory_ms: tuple[float, ...] = setting(
        (3.0, 6.0), "minimum gaps between predicted spikes tried by the readout (ms)")
    readout_thresholds: int = setting(
        25, "fixed thresholds tried per (smoothing, gap): quantiles of the peaks' heights", min=1)
    readout_count_scales: tuple[float, ...] = setting(
        (0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3), "factors on the hazard's expected count tried (count-matched readouts)")


@dataclass(frozen=True)
class Readout:
    """Peak-picking settings: smoothing SD (ms), threshold on the smoothed hazard (probability
    per bin), and the minimum gap between spikes (ms).

    With ``count_scale`` set, ``threshold`` is unused: in each window the highest
    ``round(count_scale * sum of the hazard over the window's bins)`` peaks become spikes.
    """

    smoothing_ms: float
    threshold: float
    refractory_ms: float
    count_scale: float | None = None

    def as_record(self) -> dict:
        return asdict(self)


def _smooth(hazard: np.ndarray, sd_bins: float) -> np.ndarray:
    if sd_bins <= 0:
        return np.asarray(hazard, np.float64)
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.asarray(hazard, np.float64), sd_bins, mode="nearest")


def _peaks(smoothed: np.ndarray, gap_bins: int, height: float) -> np.ndarray:
    from scipy.signal import find_peaks

    return find_peaks(smoothed, height=height, distance=max(1, gap_bins))[0]


def _times(hazard: np.ndarray, peaks: np.ndarray, t0_s: float, bin_s: float) -> np.ndarray:
    """Hazard-weighted mean time (s) of bins peak-1..peak+1 around each peak (bin centres at t0 + (k + 0.5) bin_s)."""
    h = np.asarray(hazard, np.float64)
    idx = np.clip(peaks[:, None] + np.array([-1, 0, 1]), 0, h.size - 1)
    w = h[idx] + 1e-12
    centre = (idx + 0.5) * w
    return t0_s + bin_s * centre.sum(axis=1) / w.sum(axis=1)


def _count_matched_peaks(hazard: np.ndarray, smoothed: np.ndarray, gap_bins: int, count_scale: float,
                         t0_s: float, bin_s: float, window_s: tuple[float, float]) -> np.ndarray:
    """The ``round(count_scale * expected count)`` highest peaks (bin indices, increasing) inside
    ``window_s``; the expected count is the hazard's sum over the window's bins."""
    n = hazard.shape[0]
    k0 = min(n, max(0, int(np.ceil((window_s[0] - t0_s) / bin_s - 1e-9))))
    k1 = min(n, max(k0, int(np.ceil((window_s[1] - t0_s) / bin_s - 1e-9))))
    n_keep = int(round(count_scale * float(np.sum(hazard[k0:k1], dtype=np.float64))))
    peaks = _peaks(smoothed, gap_bins, 1e-12)
    peaks = peaks[(peaks >= k0) & (peaks < k1)]
    if n_keep <= 0 or peaks.size == 0:
        return peaks[:0]
    order = np.argsort(-smoothed[peaks], kind="stable")[:n_keep]
    return np.sort(peaks[order])


def spikes_from_hazard(hazard: np.ndarray, t0_s: float, bin_s: float, readout: Readout,
                       window_s: tuple[float, float]) -> np.ndarray:
    """Spike times (s), strictly increasing, inside ``window_s``, from a hazard per bin
    (bin k starting at ``t0_s + k * bin_s``)."""
    sm = _smooth(hazard, readout.smoothing_ms * 1e-3 / bin_s)
    gap = int(round(readout.refractory_ms * 1e-3 / bin_s))
    if readout.count_scale is None:
        peaks = _peaks(sm, gap, readout.threshold)
    else:
        peaks = _count_matched_peaks(hazard, sm, gap, readout.count_scale, t0_s, bin_s, window_s)
    t = _times(hazard, peaks, t0_s, bin_s)
    t = t[(t >= window_s[0]) & (t < window_s[1])]
    if t.size > 1:  # guard: peak-picking with gap >= 2 bins already gives increasing times
        t = t[np.concatenate([[True], np.diff(t) > 0])]
    return t


def choose_readout(hazards: dict[str, np.ndarray], t0s_s: dict[str, float], bin_s: float, score,
                   windows_s: dict[str, tuple[float, float]], grid: ReadoutSettings) -> tuple[Readout, float]:
    """The readout that maximises ``score({name: spike times})`` (held-out Gamma/R) over ``grid``:
    fixed thresholds (quantiles of the peaks' heights) and count-matched thresholds, for every
    smoothing width and refractory gap.

    Args:
        hazards: per held-out stimulus, the hazard per bin; ``t0s_s`` its first bin's start (s).
        score: callable taking ``{name: spike times (s)}`` and returning P (higher is better).
        windows_s: the held-out window of each stimulus (s).
    Returns:
        (best readout, its score).
    """
    best: tuple[float, Readout] | None = None
    for sd in grid.readout_smoothing_ms:
        smoothed = {k: _smooth(h, sd * 1e-3 / bin_s) for k, h in hazards.items()}
        for gap_ms in grid.readout_refractory_ms:
            gap = int(round(gap_ms * 1e-3 / bin_s))
            heights = np.concatenate([smoothed[k][_peaks(smoothed[k], gap, 1e-6)] for k in hazards])
            if heights.size == 0:
                continue
            levels = np.unique(np.quantile(heights, np.linspace(0.0, 0.98, grid.readout_thresholds)))
            for r in [Readout(float(sd), float(th), float(gap_ms)) for th in levels] + \
                     [Readout(float(sd), 0.0, float(gap_ms), float(c)) for c in grid.readout_count_scales]:
                pred = {k: spikes_from_hazard(h, t0s_s[k], bin_s, r, windows_s[k]) for k, h in hazards.items()}
                p = score(pred)
                if best is None or p > best[0]:
                    best = (p, r)
    if best is None:
        return Readout(0.0, 0.5, grid.readout_refractory_ms[0]), 0.0
    return best[1], float(best[0])
