"""The GIF escape-rate threshold: a spike hazard that rises exponentially with V above a moving threshold.

``lambda(t) = lambda0 exp((V(t) - V_T - sum_spikes gamma(t - t_j) - theta_V(t)) / Delta_V)``, with
``gamma(s) = sum_k g_k exp(-s / tau_k)`` (mV; positive = the threshold moves up after a spike)
and an optional coupling to the voltage itself, ``theta_V(t) = a (k * [V - E_V]_+)(t)``.

The coupling is the inactivating GIF's (Mensi et al. 2016, PLoS Comput Biol 12:e1004761):
sodium inactivation raises a cortical cell's spike threshold when the membrane stays
depolarised (Platkiewicz & Brette 2011). The voltage above ``E_V`` (mV), low-pass filtered by
a unit-area exponential ``k`` of time constant ``tau_V``, moves the threshold up by ``a`` mV per
mV. For fixed ``tau_V`` and ``E_V`` the term is linear in ``a``, so the threshold likelihood
stays concave; ``tau_V`` and ``E_V`` are searched on a grid. During the refractory period after
a spike the model voltage is not computed; the filter's input there is the reset voltage's,
``[V_r - E_V]_+``, the same in the likelihood and in the free run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qsnmc import lowpass

from qsnmc_plugins.gif.basis import ExponentialBasis

#: the rate at threshold (Hz): a convention, V_T absorbs any other value
LAMBDA0_HZ = 1.0


@dataclass(frozen=True)
class VoltageCoupling:
    """Where the coupling starts and how fast it follows: ``tau_s`` (s) and ``onset_mV`` (E_V, mV)."""

    tau_s: float
    onset_mV: float

    def decay(self, step_s: float) -> float:
        """The filter's decay per model step."""
        return float(np.exp(-step_s / self.tau_s))

    def drive(self, v_mV: np.ndarray, vr_mV: float) -> np.ndarray:
        """The filter's input ``[V - E_V]_+`` (mV); NaN (refractory) bins take the reset voltage's value."""
        v = np.where(np.isfinite(v_mV), v_mV, vr_mV)
        return np.maximum(v - self.onset_mV, 0.0)

    def filtered(self, v_mV: np.ndarray, vr_mV: float, step_s: float, initial_mV: float | None = None) -> np.ndarray:
        """``(k * [V - E_V]_+)`` (mV) over ``v_mV``'s bins of ``step_s`` (s), :func:`qsnmc.lowpass` from
        ``initial_mV`` before the first bin (None: steady state; the free run carries the filter's state
        across blocks)."""
        return lowpass(self.drive(v_mV, vr_mV), step_s, self.tau_s, initial=initial_mV)

    def to_record(self) -> dict:
        return {"tau_ms": 1e3 * self.tau_s, "onset_mV": self.onset_mV}


@dataclass(frozen=True)
class EscapeThreshold:
    """Fitted threshold parameters.

    Attributes:
        VT_mV: threshold at rest (mV), where the hazard is ``lambda0_hz``.
        DV_mV: sharpness of the escape rate (mV).
        gamma_basis: basis of the spike-triggered threshold movement.
        gamma_mV: weight of each basis exponential (mV).
        lambda0_hz: hazard at threshold (Hz).
        coupling: filter and onset of the voltage coupling (None: no coupling).
        coupling_mV_per_mV: threshold movement per mV of the filtered voltage above the onset.
    """

    VT_mV: float
    DV_mV: float
    gamma_basis: ExponentialBasis
    gamma_mV: tuple[float, ...]
    lambda0_hz: float = LAMBDA0_HZ
    coupling: VoltageCoupling | None = None
    coupling_mV_per_mV: float = 0.0

    @classmethod
    def from_coefficients(cls, beta: np.ndarray, gamma_basis: ExponentialBasis,
                          coupling: VoltageCoupling | None = None) -> "EscapeThreshold":
        """From ``log(lambda / Hz) = b0 + b1 V - sum_k b_k H_k - c_V F_V`` (the convex problem's
        coefficients; ``F_V``: the filtered voltage above the coupling's onset, mV, a last
        coefficient present only with a coupling)."""
        dv = 1.0 / float(beta[1])
        k = gamma_basis.size
        return cls(-float(beta[0]) * dv, dv, gamma_basis, tuple(float(b) * dv for b in beta[2 : 2 + k]),
                   coupling=coupling, coupling_mV_per_mV=float(beta[2 + k]) * dv if coupling else 0.0)

    def to_record(self) -> dict:
        return {"VT_mV": self.VT_mV, "DV_mV": self.DV_mV, "lambda0_hz": self.lambda0_hz,
                "gamma": self.gamma_basis.to_record(self.gamma_mV, "mV"),
                "voltage_coupling": None if self.coupling is None else
                {**self.coupling.to_record(), "mV_per_mV": self.coupling_mV_per_mV}}


def coupling_candidates(v_mV: np.ndarray, taus_s: Sequence[float],
                        onset_quantiles: Sequence[float]) -> list[VoltageCoupling]:
    """The coupling grid: filter time constants ``taus_s`` (s) x onsets at ``onset_quantiles`` of the
    finite voltages ``v_mV``."""
    onsets = np.quantile(v_mV[np.isfinite(v_mV)], onset_quantiles)
    return [VoltageCoupling(float(t), float(e)) for t in taus_s for e in onsets]
