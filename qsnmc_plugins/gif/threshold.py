"""The GIF escape-rate threshold: a spike hazard that rises exponentially with V above a moving threshold.

``lambda(t) = lambda0 exp((V(t) - V_T - sum_spikes gamma(t - t_j)) / Delta_V)``, with
``gamma(s) = sum_k g_k exp(-s / tau_k)`` (mV; positive = the threshold moves up after a spike).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsnmc_plugins.gif.basis import ExponentialBasis

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
    """

    VT_mV: float
    DV_mV: float
    gamma_basis: ExponentialBasis
    gamma_mV: tuple[float, ...]
    lambda0_hz: float = LAMBDA0_HZ

    @classmethod
    def from_coefficients(cls, beta: np.ndarray, gamma_basis: ExponentialBasis) -> "EscapeThreshold":
        """From ``log(lambda / Hz) = b0 + b1 V - sum_k b_k H_k`` (the convex problem's coefficients)."""
        dv = 1.0 / float(beta[1])
        return cls(-float(beta[0]) * dv, dv, gamma_basis, tuple(float(b) * dv for b in beta[2:]))

    def to_record(self) -> dict:
        return {"VT_mV": self.VT_mV, "DV_mV": self.DV_mV, "lambda0_hz": self.lambda0_hz,
                "gamma": self.gamma_basis.to_record(self.gamma_mV, "mV")}

    def level_mV(self, rate_hz: float) -> float:
        """How far above the moving threshold V must be for the hazard to reach ``rate_hz`` (mV)."""
        return self.DV_mV * float(np.log(rate_hz / self.lambda0_hz))
