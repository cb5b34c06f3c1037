"""The GIF escape-rate threshold: a spike hazard that rises exponentially with V above a moving threshold.

``lambda(t) = lambda0 exp((V(t) - V_T - sum_spikes gamma(t - t_j) - theta_V(t)) / Delta_V)``, with
``gamma(s) = sum_k g_k exp(-s / tau_k)`` (mV; positive = the threshold moves up after a spike)
and an optional coupling to the voltage itself, ``theta_V(t) = a (k * [V - E_V]_+)(t)``
(:mod:`~qsnmc_plugins.gif.voltage_coupling`, Mensi et al. 2016).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsnmc_plugins.gif.basis import ExponentialBasis
from qsnmc_plugins.gif.voltage_coupling import VoltageCoupling

#: the rate at threshold (Hz): a convention, V_T absorbs any other value
LAMBDA0_HZ = 1.0


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
