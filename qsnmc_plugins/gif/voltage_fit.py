"""Refit the GIF membrane on the simulated voltage (output error), the recorded spikes imposed.

The dV/dt regression (:mod:`qsnmc_plugins.gif.subthreshold`) fits the fast dynamics well
but leaves g_L and E_L poorly determined: a small error in ``g_L / C`` shifts the simulated
voltage by millivolts. Here the voltage the model itself produces (reset to ``V_r`` after
each recorded spike, the spike-triggered current of the recorded spikes) is fitted to the
recorded one. For a fixed membrane time constant ``tau_m`` that voltage is linear in
``(V_r, E_L, 1/g_L, w_k/g_L)``:

    V[n] = V_r rho^d + E_L (1 - rho^d) + (sum_j g_j Phi[I_j][n] - sum_k w_k Phi[X_k][n]) / g_L,

where ``d`` is the number of bins since the last reset, ``rho = exp(-h / tau_m)`` and
``Phi`` the resetting filter ``Phi[n] = rho Phi[n-1] + (1 - rho) u[n-1]``, ``Phi = 0`` at a
reset. So each ``tau_m`` is one least-squares problem, and ``tau_m`` itself is a bounded
one-dimensional search (``scipy.optimize.minimize_scalar``) on the residual. ``I_j`` are the
raw and filtered currents of the membrane's input filter (:func:`~qsnmc_plugins.gif.subthreshold.input_signals`),
``g_j`` their gains (summing to 1).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from qsnmc import lowpass, spike_window_mask

from qsnmc_plugins.gif.binning import BinnedStimulus
from qsnmc_plugins.gif.simulate import kept_spikes
from qsnmc_plugins.gif.subthreshold import Membrane, input_signals


class VoltageDesign:
    """The fixed parts of the problem: per repetition, the signals, the target and the kept bins
    (every ``stride``-th: neighbouring bins of a smooth voltage carry little more)."""

    def __init__(self, stimuli: Sequence[BinnedStimulus], membrane: Membrane, cut_before_s: float,
                 stride: int) -> None:
        self.membrane = membrane
        self.rows = []
        for stim in stimuli:
            h = stim.step_s
            n = stim.n_bins
            n_ref = max(1, int(round(membrane.t_ref_s / h)))
            before = int(round(cut_before_s / h))
            inputs = input_signals(stim.current_pA, h, membrane.input_taus_s)[:, stim.first_bin : stim.first_bin + n]
            for v, spikes in zip(stim.voltage_mV, stim.spike_bins):
                used = kept_spikes(spikes, n_ref, n)
                resets = used + n_ref
                resets = resets[resets < n]
                seg = np.full(n, -1, dtype=np.int64)
                seg[resets] = resets
                seg = np.maximum.accumulate(seg)  # per bin, the bin of the last reset at or before it (-1: none)
                keep = np.flatnonzero((seg >= 0) & ~spike_window_mask(used, n, before, n_ref))[::stride]
                x = membrane.eta_basis.spike_features(used, n, h)
                signals = np.vstack([inputs, -x])
                self.rows.append((h, seg[keep], keep - seg[keep], keep, signals, v[keep]))

    def solve(self, tau_s: float) -> tuple[np.ndarray, float, int]:
        """Least squares at one ``tau_m``: coefficients ``(V_r, E_L, 1/g_L, w_k/g_L)``, RSS, samples."""
        p = 2 + len(self.membrane.input_taus_s) + 1 + self.membrane.eta_basis.size
        gram, rhs, ysq, count = np.zeros((p, p)), np.zeros(p), 0.0, 0
        for h, start, lag, keep, signals, y in self.rows:
            rho = float(np.exp(-h / tau_s))
            decay = np.exp(lag * np.log(rho))
            full = np.zeros_like(signals)
            full[:, 1:] = lowpass(signals[:, :-1], h, tau_s, initial=0.0)
            phi = full[:, keep] - full[:, start] * decay  # the filter minus what it carried over the last reset
            design = np.vstack([decay, 1.0 - decay, phi])
            gram += design @ design.T
            rhs += design @ y
            ysq += float(y @ y)
            count += int(y.size)
        coef = np.linalg.solve(gram + 1e-9 * np.diag(np.diag(gram)), rhs)
        rss = max(ysq - 2.0 * coef @ rhs + coef @ gram @ coef, 0.0)
        return coef, rss, count


def fit_on_voltage(stimuli: Sequence[BinnedStimulus], membrane: Membrane, cut_before_s: float,
                   tau_bounds_s: tuple[float, float], stride: int) -> tuple[Membrane, float]:
    """The membrane (same basis and refractory period) that best reproduces the recorded voltage,
    ``tau_m`` searched in ``tau_bounds_s`` (s), every ``stride``-th kept bin fitted.

    Returns:
        The refitted membrane and its RMS voltage error on the fitted bins (mV).
    """
    from scipy.optimize import minimize_scalar

    design = VoltageDesign(stimuli, membrane, cut_before_s, stride)
    res = minimize_scalar(lambda lt: design.solve(float(np.exp(lt)))[1], method="bounded",
                          bounds=tuple(np.log(tau_bounds_s)), options={"xatol": 1e-2})
    tau = float(np.exp(res.x))
    coef, rss, count = design.solve(tau)
    n_in = 1 + len(membrane.input_taus_s)
    vr, el = coef[:2]
    inv_gl = float(np.sum(coef[2 : 2 + n_in]))  # the input filter's gains sum to 1
    if inv_gl <= 0:
        raise RuntimeError("gif: the voltage fit gave a negative input resistance")
    gl = 1.0 / inv_gl
    gains = tuple(float(c * gl) for c in coef[2 : 2 + n_in])
    eta = tuple(float(c * gl) for c in coef[2 + n_in:])
    refit = replace(membrane, C_pF=float(1e3 * gl * tau), gL_nS=float(gl), EL_mV=float(el), eta_pA=eta, Vr_mV=float(vr),
                    input_gains=gains)
    return refit, float(np.sqrt(rss / count))
