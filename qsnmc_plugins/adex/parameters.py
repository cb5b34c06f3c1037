"""The AdEx parameter set, in SI-friendly units (pF, nS, mV, ms, pA).

Model (Brette & Gerstner 2005, J Neurophysiol 94:3637)::

    C dV/dt = -g_L (V - E_L) + g_L Delta_T exp((V - V_T) / Delta_T) - w - w_2 + I(t)
    tau_w dw/dt = a (V - E_L) - w
    tau_w2 dw_2/dt = -w_2
    V > V_peak:  V <- V_r,  w <- w + b,  w_2 <- w_2 + b_2

``w_2`` is a second, slow spike-triggered current (seconds), for cells whose rate adapts to
each stimulus' mean; a spike is reported ``latency`` after the step that crosses ``V_peak``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class AdExParameters:
    """One AdEx neuron.

    Attributes:
        C_pF: membrane capacitance (pF).
        gL_nS: leak conductance (nS).
        EL_mV: leak reversal potential (mV).
        DeltaT_mV: slope factor of the spike initiation (mV).
        VT_mV: effective threshold of the exponential (mV).
        Vpeak_mV: the voltage at which a spike is emitted and V reset (mV).
        Vr_mV: reset voltage (mV).
        a_nS: subthreshold adaptation (nS).
        b_pA: spike-triggered adaptation increment (pA).
        tauw_ms: adaptation time constant (ms).
        b2_pA: increment of the slow spike-triggered current (pA).
        tauw2_ms: time constant of the slow current (ms).
        latency_ms: reported spike time minus the time V crosses V_peak (ms).
    """

    C_pF: float = 200.0
    gL_nS: float = 10.0
    EL_mV: float = -70.0
    DeltaT_mV: float = 2.0
    VT_mV: float = -50.0
    Vpeak_mV: float = 0.0
    Vr_mV: float = -58.0
    a_nS: float = 2.0
    b_pA: float = 40.0
    tauw_ms: float = 120.0
    b2_pA: float = 0.0
    tauw2_ms: float = 2000.0
    latency_ms: float = 0.0

    def with_values(self, **changes: float) -> "AdExParameters":
        """A copy with some fields changed."""
        return replace(self, **{k: float(v) for k, v in changes.items()})

    def as_dict(self) -> dict[str, float]:
        """Every field as a float, units in the names (the fit record's ``fitted``)."""
        return {k: float(v) for k, v in asdict(self).items()}
