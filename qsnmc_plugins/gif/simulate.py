"""Simulating a GIF neuron on the model grid: with the spikes given (:func:`forced_voltage`, the
recorded ones, for the threshold likelihood) or in a free run (:func:`simulate_spikes`).

The membrane is integrated exactly over each step for a current held constant over it
(exponential Euler): ``V[n+1] = rho V[n] + (1 - rho) V_inf[n]``, ``rho = exp(-h / tau_m)``,
``V_inf = E_L + (I_eff - eta) / g_L`` (``I_eff``: the injected current through the membrane's
input filter). A spike at bin ``m`` starts the kernels there, holds the
voltage for the refractory period and resets it to ``V_r`` at bin ``m + n_ref``. Between
spikes the kernels are sums of decaying exponentials, so the free run is event-driven:
blocks of bins (doubling in length) are computed with NumPy until the next spike.
"""
from __future__ import annotations

import numpy as np

from qsnmc import lowpass

from qsnmc_plugins.gif.subthreshold import Membrane
from qsnmc_plugins.gif.threshold import EscapeThreshold

#: bins in the first block searched after a spike; each further block doubles
FIRST_BLOCK = 64
#: longest block (bins)
MAX_BLOCK = 8192
#: largest exponent of the hazard (keeps exp finite)
MAX_LOG_HAZARD = 50.0
#: a free run stops after this mean rate's worth of spikes (Hz; a guard for absurd parameters)
MAX_RATE_HZ = 500.0


def _relax(v0: float, vinf: np.ndarray, step_s: float, tau_m_s: float) -> np.ndarray:
    """``V[0] = v0``, ``V[j+1] = rho V[j] + (1 - rho) vinf[j]``; returns ``V[0..len(vinf)]``."""
    return np.concatenate(([v0], lowpass(vinf, step_s, tau_m_s, initial=v0)))


def kept_spikes(spike_bins: np.ndarray, n_ref: int, n: int) -> np.ndarray:
    """The spike bins in ``[0, n)``, sorted, less each one inside the ``n_ref``-bin refractory period of the last kept."""
    used, last = [], -(10**9)
    for m in np.sort(np.asarray(spike_bins, dtype=np.int64)):
        if m - last >= n_ref and 0 <= m < n:
            used.append(int(m))
            last = int(m)
    return np.asarray(used, dtype=np.int64)


def forced_voltage(membrane: Membrane, current_pA: np.ndarray, step_s: float, spike_bins: np.ndarray, *,
                   effective: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Model voltage (mV) over ``current_pA``'s bins with the spikes given (NaN in refractory bins),
    from the steady state at the first bin's drive.

    A spike that falls inside the refractory period of the previous one is dropped.
    ``effective``: ``current_pA`` has already been through the membrane's input filter.

    Returns:
        The voltage, and the spike bins actually used.
    """
    n = current_pA.size
    n_ref = max(1, int(round(membrane.t_ref_s / step_s)))
    used = kept_spikes(spike_bins, n_ref, n)
    eta = np.asarray(membrane.eta_pA) @ membrane.eta_basis.spike_features(used, n, step_s)
    drive = current_pA if effective else membrane.effective_current(current_pA, step_s)
    vinf = membrane.EL_mV + (drive - eta) / membrane.gL_nS
    v = np.full(n, np.nan)
    start, v_start = 0, vinf[0]
    for m in list(used) + [n - 1]:
        if start >= n:
            break
        stop = max(m, start)
        v[start : stop + 1] = _relax(v_start, vinf[start:stop], step_s, membrane.tau_m_s)
        start, v_start = m + n_ref, membrane.Vr_mV
    return v, used


def simulate_spikes(membrane: Membrane, threshold: EscapeThreshold, current_pA: np.ndarray, step_s: float, *,
                    rng: np.random.Generator | None = None, level_hz: float | None = None) -> np.ndarray:
    """Spike bins of a free GIF run over every bin of ``current_pA``, from its steady state at ``I[0]``.

    Args:
        rng: draw spikes from the escape rate (stochastic run).
        level_hz: instead, emit a spike when the hazard reaches this rate (deterministic run).
    """
    if (rng is None) == (level_hz is None):
        raise ValueError("give either rng (stochastic) or level_hz (deterministic)")
    n = current_pA.size
    current_pA = membrane.effective_current(current_pA, step_s)
    n_ref = max(1, int(round(membrane.t_ref_s / step_s)))
    log_decay_eta = np.log(membrane.eta_basis.decay(step_s))[:, None]
    log_decay_gamma = np.log(threshold.gamma_basis.decay(step_s))[:, None]
    eta_w = np.asarray(membrane.eta_pA)
    gamma_w = np.asarray(threshold.gamma_mV)
    amp_eta = np.zeros_like(eta_w)
    amp_gamma = np.zeros_like(gamma_w)
    el, gl = membrane.EL_mV, membrane.gL_nS
    vt, dv, lam0 = threshold.VT_mV, threshold.DV_mV, threshold.lambda0_hz
    u_level = None if level_hz is None else np.log(level_hz / lam0)
    # voltage coupling (inactivating GIF): its filtered drive F_V, carried across blocks and spikes
    coupling, a_v = threshold.coupling, threshold.coupling_mV_per_mV
    if coupling is not None:
        rho_v = coupling.decay(step_s)
        drive_reset = float(coupling.drive(np.array([membrane.Vr_mV]), membrane.Vr_mV)[0])
    f_v = None  # the filter's value at the bin before the block (None: steady state at its first bin)
    max_spikes = int(MAX_RATE_HZ * n * step_s) + 1
    spikes: list[int] = []
    ref = 0
    start, v_start = 0, el + (current_pA[0]) / gl
    while start < n and len(spikes) < max_spikes:
        target = None if rng is None else float(rng.exponential())
        cum = 0.0
        b0, v_b0, block, found = start, v_start, FIRST_BLOCK, -1
        while b0 < n:
            b1 = min(b0 + block, n)
            lags = np.arange(b0 - ref, b1 - ref)[None, :]
            eta = amp_eta @ np.exp(lags * log_decay_eta)
            vinf = el + (current_pA[b0:b1] - eta) / gl
            v = _relax(v_b0, vinf, step_s, membrane.tau_m_s)
            u = (v[:-1] - vt - amp_gamma @ np.exp(lags * log_decay_gamma)) / dv
            if coupling is not None:
                fv_block = coupling.filtered(v[:-1], membrane.Vr_mV, step_s, f_v)
                u -= a_v * fv_block / dv
            if u_level is not None:
                hit = u >= u_level
            else:
                c = cum + np.cumsum(lam0 * step_s * np.exp(np.minimum(u, MAX_LOG_HAZARD)))
                hit = c >= target
                cum = float(c[-1])
            j = int(hit.argmax())
            if hit[j]:
                found = b0 + j
                if coupling is not None:  # through the spike's bin, then the refractory bins at the reset's drive
                    f_v = drive_reset + (float(fv_block[j]) - drive_reset) * rho_v ** (n_ref - 1)
                break
            if coupling is not None:
                f_v = float(fv_block[-1])
            b0, v_b0 = b1, float(v[-1])
            block = min(2 * block, MAX_BLOCK)
        if found < 0:
            break
        spikes.append(found)
        amp_eta = amp_eta * np.exp((found - ref) * log_decay_eta[:, 0]) + eta_w
        amp_gamma = amp_gamma * np.exp((found - ref) * log_decay_gamma[:, 0]) + gamma_w
        ref = found
        start, v_start = found + n_ref, membrane.Vr_mV
    return np.asarray(spikes, dtype=np.int64)
