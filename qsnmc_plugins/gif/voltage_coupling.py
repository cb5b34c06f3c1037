"""A threshold that follows the membrane voltage: the inactivating GIF's coupling (Mensi et al. 2016).

Sodium inactivation raises a cortical cell's spike threshold when the membrane stays
depolarised (Platkiewicz & Brette 2011). Mensi et al. (2016, PLoS Comput Biol 12:e1004761)
add it to the GIF as ``theta_V(t) = a (k * [V - E_V]_+)(t)``: the voltage above ``E_V``
(mV), low-pass filtered by a unit-area exponential ``k`` of time constant ``tau_V``, moves
the threshold up by ``a`` mV per mV. For fixed ``tau_V`` and ``E_V`` the term is linear in
``a``, so the threshold likelihood stays concave; ``tau_V`` and ``E_V`` are searched on a grid.

During the refractory period after a spike the model voltage is not computed; the filter's
input there is the reset voltage's, ``[V_r - E_V]_+``, the same in the likelihood and in the
free run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.signal import lfilter


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
        """``(k * [V - E_V]_+)`` (mV) over ``v_mV``'s bins of ``step_s`` (s): ``F[n] = rho F[n-1] +
        (1 - rho) x[n]``, from ``initial_mV`` before the first bin (default: steady state at it, as
        :func:`qsnmc.lowpass`; the free run carries the filter's state across blocks)."""
        x = self.drive(v_mV, vr_mV)
        if x.size == 0:
            return x
        rho = self.decay(step_s)
        f0 = x[0] if initial_mV is None else initial_mV
        return lfilter([1.0 - rho], [1.0, -rho], x, zi=[rho * f0])[0]

    def to_record(self) -> dict:
        return {"tau_ms": 1e3 * self.tau_s, "onset_mV": self.onset_mV}


def candidates(v_mV: np.ndarray, taus_s: Sequence[float], onset_quantiles: Sequence[float]) -> list[VoltageCoupling]:
    """The grid of filter time constants ``taus_s`` (s) x onsets at ``onset_quantiles`` of the
    finite voltages ``v_mV``."""
    onsets = np.quantile(v_mV[np.isfinite(v_mV)], onset_quantiles)
    return [VoltageCoupling(float(t), float(e)) for t in taus_s for e in onsets]
