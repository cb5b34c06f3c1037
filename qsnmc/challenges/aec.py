"""Active electrode compensation (AEC; Badel et al. 2008) the way the GIFFittingToolbox applies it.

A sharp or patch electrode in bridge mode adds its own response to the membrane voltage: the
recorded voltage is ``V_rec = V_m + K_e * I`` (``*``: convolution, ``K_e`` a fast kernel of a
few ms). From a sweep of small subthreshold noise current (the AEC sweep):

1. the full kernel ``K`` (membrane and electrode together, 150 ms) is the least-squares
   linear filter from the current to the voltage (both with their means removed), on
   rectangular basis functions one sample wide over the first 0.5 ms, then widening by a
   factor ``e^(1/10)`` per bin up to 5 ms (the toolbox's settings; the first 150 ms of the
   sweep, where the filter's history is incomplete, are left out of the fit);
2. the membrane's part is one exponential ``A exp(-t / tau_m)`` fitted to ``K`` between 3
   and 50 ms (least squares, ``scipy.optimize.curve_fit``);
3. the electrode kernel ``K_e`` is ``K`` minus that exponential over its first 7 ms.

Any sweep of the same cell is then compensated by subtracting the electrode's response to
its own recorded current: ``V_m = V_rec - K_e * I``. Kernels are in MOhm/ms, so that their
integral (the electrode resistance ``R_e``) is in MOhm and ``K * I`` with ``I`` in nA and
time in ms is in mV.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qsnmc.challenges.textdata import DataImportError

#: the toolbox's settings (ms): length of the full kernel, of the electrode kernel, of the
#: sample-wide bins at its start, the widest bin, and the range of the membrane's exponential fit
FULL_KERNEL_MS = 150.0
ELECTRODE_KERNEL_MS = 7.0
FINE_BINS_MS = 0.5
WIDEST_BIN_MS = 5.0
BIN_GROWTH = float(np.exp(1 / 10))
MEMBRANE_FIT_MS = (3.0, 50.0)
#: starting guesses of the membrane fit: amplitude (MOhm/ms) and time constant (ms), and the time constants allowed
MEMBRANE_GUESS = (10.0, 20.0)
MEMBRANE_TAU_MS = (0.5, 1000.0)
#: least fraction of the AEC voltage's variance the full kernel must explain (else it is not this cell's AEC sweep)
MIN_VOLTAGE_R2 = 0.2


@dataclass(frozen=True)
class ElectrodeKernel:
    """The electrode kernel estimated from an AEC sweep, and how well it was estimated.

    Attributes:
        dt_s: sampling step (s).
        kernel_MOhm_per_ms: ``K_e`` at lags 0, dt, 2 dt, ... (MOhm/ms), 7 ms long.
        membrane_amplitude_MOhm_per_ms: ``A`` of the membrane's exponential.
        membrane_tau_ms: ``tau_m`` of the membrane's exponential (ms).
        membrane_fit_r2: R^2 of that exponential on ``K`` between 3 and 50 ms.
        voltage_r2: fraction of the AEC voltage's variance the full kernel explains.
        r_e_halves_MOhm: ``R_e`` estimated on each half of the AEC sweep alone (its spread).
        excluded_s: how much of the AEC sweep's voltage the fit left out (s; around spikes).
    """

    dt_s: float
    kernel_MOhm_per_ms: np.ndarray
    membrane_amplitude_MOhm_per_ms: float
    membrane_tau_ms: float
    membrane_fit_r2: float
    voltage_r2: float
    r_e_halves_MOhm: tuple[float, float]
    excluded_s: float = 0.0

    @property
    def resistance_MOhm(self) -> float:
        """``R_e``: the integral of ``K_e`` (MOhm)."""
        return float(np.sum(self.kernel_MOhm_per_ms) * self.dt_s * 1e3)

    def response_mV(self, current_pA: np.ndarray) -> np.ndarray:
        """The electrode's voltage (mV) in response to ``current_pA`` (the current before the sweep held
        at its first value)."""
        k = self.kernel_MOhm_per_ms
        padded = np.concatenate([np.full(k.size - 1, current_pA[0]), current_pA])
        return np.convolve(padded, k, mode="valid") * (1e-3 * self.dt_s * 1e3)  # pA -> nA; dt in ms

    def compensate(self, voltage_mV: np.ndarray, current_pA: np.ndarray) -> np.ndarray:
        """The membrane voltage (mV): ``voltage_mV`` minus the electrode's response to ``current_pA``."""
        return np.asarray(voltage_mV, np.float64) - self.response_mV(np.asarray(current_pA, np.float64))

    def describe(self) -> dict[str, Any]:
        """The kernel and its fit, as a manifest keeps them."""
        return {
            "method": "active electrode compensation (Badel et al. 2008) as the GIFFittingToolbox applies it: full "
                      f"{FULL_KERNEL_MS:g} ms kernel by least squares from the AEC sweep's current to its voltage; "
                      f"membrane part one exponential fitted to it in {MEMBRANE_FIT_MS[0]:g}-{MEMBRANE_FIT_MS[1]:g} "
                      f"ms; electrode kernel the rest over {ELECTRODE_KERNEL_MS:g} ms; V_m = V_rec - K_e * I",
            "electrode_resistance_MOhm": round(self.resistance_MOhm, 3),
            "electrode_resistance_halves_MOhm": [round(r, 3) for r in self.r_e_halves_MOhm],
            "electrode_kernel_MOhm_per_ms": [round(float(k), 4) for k in self.kernel_MOhm_per_ms],
            "kernel_dt_s": self.dt_s,
            "membrane_fit": {"amplitude_MOhm_per_ms": round(self.membrane_amplitude_MOhm_per_ms, 4),
                             "tau_ms": round(self.membrane_tau_ms, 3), "r2": round(self.membrane_fit_r2, 4)},
            "aec_voltage_r2": round(self.voltage_r2, 4),
            "aec_excluded_s": round(self.excluded_s, 4),
        }


def bin_edges(dt_s: float) -> np.ndarray:
    """Edges (in samples of lag) of the full kernel's rectangular basis functions."""
    dt_ms = dt_s * 1e3
    edges_ms = list(np.arange(0.0, FINE_BINS_MS + 1e-9, dt_ms))
    width = dt_ms
    while edges_ms[-1] < FULL_KERNEL_MS:
        width = min(width * BIN_GROWTH, WIDEST_BIN_MS)
        edges_ms.append(edges_ms[-1] + width)
    edges = np.unique(np.round(np.asarray(edges_ms) / dt_ms).astype(np.int64))
    return edges


def full_kernel(current_pA: np.ndarray, voltage_mV: np.ndarray, dt_s: float,
                excluded: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """The full kernel ``K`` (MOhm/ms, one value per lag sample) by least squares, and the voltage's R^2.

    ``excluded`` marks samples whose voltage is left out of the fit (e.g. around a spike).
    """
    edges = bin_edges(dt_s)
    n_lags = int(edges[-1])
    kept = np.ones(len(voltage_mV), bool) if excluded is None else ~np.asarray(excluded, bool)
    current = np.asarray(current_pA, np.float64) - np.mean(current_pA)
    voltage = np.asarray(voltage_mV, np.float64) - np.mean(np.asarray(voltage_mV)[kept])
    rows = np.arange(n_lags, current.size)
    rows = rows[kept[rows]]
    if rows.size <= n_lags:
        raise DataImportError(f"AEC sweep of {current.size * dt_s:g} s: too short for a {FULL_KERNEL_MS:g} ms kernel "
                              f"(at least {2 * FULL_KERNEL_MS / 1e3:g} s below threshold)")
    cumulative = np.concatenate([[0.0], np.cumsum(current)])
    # column j: the current summed over lags edges[j] .. edges[j+1]-1 before each sample
    design = np.stack([cumulative[rows - a + 1] - cumulative[rows - b + 1] for a, b in zip(edges[:-1], edges[1:])],
                      axis=1)
    target = voltage[rows]
    coef = np.linalg.solve(design.T @ design, design.T @ target)  # the normal equations (a 100-odd column design)
    residual = target - design @ coef
    r2 = 1.0 - float(np.var(residual)) / float(np.var(target)) if np.var(target) > 0 else float("nan")
    per_lag = np.repeat(coef, np.diff(edges))  # mV/pA per sample of lag
    return per_lag * 1e3 / (dt_s * 1e3), r2  # mV/pA = 1000 MOhm; per sample -> per ms


def _membrane_fit(kernel: np.ndarray, dt_s: float) -> tuple[float, float, float]:
    """``(A, tau_m, R^2)`` of one exponential fitted to ``kernel`` (MOhm/ms) between 3 and 50 ms."""
    from scipy.optimize import curve_fit

    t_ms = np.arange(kernel.size) * dt_s * 1e3
    inside = (t_ms >= MEMBRANE_FIT_MS[0]) & (t_ms <= MEMBRANE_FIT_MS[1])

    def exponential(t: np.ndarray, amplitude: float, tau: float) -> np.ndarray:
        return amplitude * np.exp(-t / tau)

    try:
        (amplitude, tau), _ = curve_fit(exponential, t_ms[inside], kernel[inside], p0=MEMBRANE_GUESS, maxfev=10000,
                                        bounds=([-np.inf, MEMBRANE_TAU_MS[0]], [np.inf, MEMBRANE_TAU_MS[1]]))
    except (RuntimeError, ValueError) as exc:
        raise DataImportError(f"AEC: no exponential fits the kernel's tail ({exc})") from exc
    fitted = exponential(t_ms[inside], amplitude, tau)
    ss = float(np.sum((kernel[inside] - np.mean(kernel[inside])) ** 2))
    r2 = 1.0 - float(np.sum((kernel[inside] - fitted) ** 2)) / ss if ss > 0 else float("nan")
    return float(amplitude), float(tau), r2


def _electrode_part(current_pA: np.ndarray, voltage_mV: np.ndarray, dt_s: float,
                    excluded: np.ndarray | None) -> tuple[np.ndarray, float, float, float, float]:
    """``K_e`` (MOhm/ms), the membrane fit's ``A``, ``tau_m`` and R^2, and the voltage's R^2, from one sweep."""
    kernel, voltage_r2 = full_kernel(current_pA, voltage_mV, dt_s, excluded)
    amplitude, tau, fit_r2 = _membrane_fit(kernel, dt_s)
    n_e = int(round(ELECTRODE_KERNEL_MS / (dt_s * 1e3)))
    t_ms = np.arange(n_e) * dt_s * 1e3
    return kernel[:n_e] - amplitude * np.exp(-t_ms / tau), amplitude, tau, fit_r2, voltage_r2


def estimate_electrode(current_pA: np.ndarray, voltage_mV: np.ndarray, dt_s: float,
                       excluded: np.ndarray | None = None) -> ElectrodeKernel:
    """The electrode kernel from an AEC sweep's recorded current (pA) and voltage (mV), sampled every ``dt_s``;
    ``excluded`` marks samples whose voltage the fit leaves out (around spikes).

    Raises:
        DataImportError: a sweep too short for the kernel, a voltage the kernel barely explains
            (:data:`MIN_VOLTAGE_R2`), or a kernel no exponential fits.
    """
    current = np.asarray(current_pA, np.float64)
    voltage = np.asarray(voltage_mV, np.float64)
    mask = np.zeros(current.size, bool) if excluded is None else np.asarray(excluded, bool)
    kernel, amplitude, tau, fit_r2, voltage_r2 = _electrode_part(current, voltage, dt_s, mask)
    if not voltage_r2 >= MIN_VOLTAGE_R2:
        raise DataImportError(f"the voltage does not follow the current (the kernel explains {voltage_r2:.2f} of its "
                              f"variance, less than {MIN_VOLTAGE_R2:g}): is it this cell's AEC sweep, of small noise "
                              "current?")
    half = current.size // 2
    halves = tuple(float(np.sum(_electrode_part(current[s], voltage[s], dt_s, mask[s])[0]) * dt_s * 1e3)
                   for s in (slice(0, half), slice(half, None)))
    return ElectrodeKernel(dt_s, kernel, amplitude, tau, fit_r2, voltage_r2, (halves[0], halves[1]),
                           float(mask.sum() * dt_s))
