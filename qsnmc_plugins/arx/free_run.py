"""Free-running simulation of a fitted ARX model, with and without its spike rule.

The model is linear in its inputs, so the voltage splits exactly into
``V = V_current + sum over spikes of g(t - t_onset)``: the response to the current
(one :func:`scipy.signal.lfilter` call over the whole protocol, started at the
steady state of the first current value) plus, for each spike, the impulse response
``g`` of the spike-history path ``c(q) / A(q)``. The spike rule then only has to
walk from one threshold crossing to the next (:func:`generate_spikes`): a Python
loop over spikes, not over samples, each step a vectorised search of the next
crossing in a chunk of bins.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter, lfilter_zi

from qsnmc_plugins.arx.identification import ArxFilter
from qsnmc_plugins.arx.stability import ar_polynomial

#: tail below which a kernel is truncated (mV)
KERNEL_TOLERANCE_MV = 1e-3
#: longest spike kernel kept (s)
MAX_KERNEL_S = 5.0
#: bins searched at a time for the next threshold crossing
SEARCH_CHUNK = 256


def current_response(model: ArxFilter, current_pA: np.ndarray) -> np.ndarray:
    """Voltage (mV) driven by the current alone, from the steady state of the first current bin."""
    a_poly = ar_polynomial(model.a)
    i = np.asarray(current_pA, dtype=np.float64) - model.i_ref_pA
    b = model.b if model.b.size else np.zeros(1)
    v = lfilter(b, a_poly, i, zi=lfilter_zi(b, a_poly) * i[0])[0] if a_poly.size > 1 or b.size > 1 else b[0] * i
    return model.v_ref_mV + v + model.d / np.sum(a_poly)


def spike_kernel(model: ArxFilter) -> np.ndarray:
    """Impulse response ``g`` (mV) of the spike-history path; ``g[j]`` acts ``j+1`` bins after the onset."""
    if model.c.size == 0:
        return np.zeros(0)
    x = np.zeros(max(int(round(MAX_KERNEL_S / model.step_s)), model.c.size))
    x[: model.c.size] = model.c  # the FIR part, then the recursion: cheaper than a long numerator in lfilter
    g = lfilter([1.0], ar_polynomial(model.a), x)
    big = np.flatnonzero(np.abs(g) > KERNEL_TOLERANCE_MV)
    return g[: big[-1] + 1] if big.size else np.zeros(0)


def teacher_forced_voltage(model: ArxFilter, current_pA: np.ndarray, onsets: list[np.ndarray]) -> np.ndarray:
    """Free-running voltage (mV) with the recorded spike onsets imposed, one row per repetition."""
    v_i = current_response(model, current_pA)
    x = np.zeros((len(onsets), v_i.size))
    for r, ks in enumerate(onsets):
        for k in np.asarray(ks, dtype=int):  # sparse FIR part: c added after each onset
            m = max(0, min(model.c.size, v_i.size - k - 1))
            x[r, k + 1 : k + 1 + m] += model.c[:m]
    return v_i + lfilter([1.0], ar_polynomial(model.a), x, axis=1)


def threshold_kernel(amplitude_mV: float, tau_s: float, step_s: float) -> np.ndarray:
    """Adaptive-threshold kernel ``amplitude * exp(-t / tau)``, ``[j]`` acting ``j+1`` bins after a spike."""
    if amplitude_mV == 0.0:
        return np.zeros(0)
    n = int(np.ceil(tau_s / step_s * np.log(max(abs(amplitude_mV), 2e-3) / KERNEL_TOLERANCE_MV)))
    t = np.arange(1, max(n, 1) + 1) * step_s
    return amplitude_mV * np.exp(-t / tau_s)


def generate_spikes(drive_mV: np.ndarray, kernel_mV: np.ndarray, refractory_bins: int,
                    stop_bin: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spike onsets of the rule ``drive_t + sum_spikes kernel(t - t_sp) >= 0``.

    Args:
        drive_mV: voltage minus threshold without any spike (mV), per bin.
        kernel_mV: what a spike adds to ``V - theta`` (spike path minus threshold
            kernel); ``kernel[j]`` acts ``j+1`` bins after the onset.
        refractory_bins: bins after an onset during which no spike can start.
        stop_bin: simulate bins ``[0, stop_bin)`` (default: all).

    Returns:
        ``(onsets, frac)``: onset bins, and the fractional position (0-1, from the
        previous bin's centre) of the linearly interpolated crossing.
    """
    n = drive_mV.size if stop_bin is None else min(stop_bin, drive_mV.size)
    nk = kernel_mV.size
    acc = np.zeros(n + nk + 1)
    onsets: list[int] = []
    fracs: list[float] = []
    p = 0
    while p < n:
        q = min(n, p + SEARCH_CHUNK)
        seg = drive_mV[p:q] + acc[p:q]
        hit = np.flatnonzero(seg >= 0.0)
        if hit.size == 0:
            p = q
            continue
        k = p + int(hit[0])
        u_k = drive_mV[k] + acc[k]
        u_prev = drive_mV[k - 1] + acc[k - 1] if k > 0 else u_k
        fracs.append(float(np.clip(-u_prev / (u_k - u_prev), 0.0, 1.0)) if u_prev < 0 else 1.0)
        onsets.append(k)
        acc[k + 1 : k + 1 + nk] += kernel_mV
        p = k + 1 + refractory_bins
    return np.array(onsets, dtype=int), np.array(fracs)
