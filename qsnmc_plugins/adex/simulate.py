"""Simulate a population of AdEx neurons in one Brian2 run (one neuron per parameter set).

Each neuron holds its own parameters as per-neuron constants and reads its
injected current from one column of a 2-D Brian2 ``TimedArray`` (sampled at the
recording's step), so the generated code (and the compiled Cython cache) depends
neither on the parameter values nor on the current, and a whole optimiser
generation costs one run.

Brian2's runtime mode pays a fixed cost per time step (about 15 us here, whatever
the number of neurons: 1 neuron and 200 neurons over 39 s both take ~6 s on 2
busy cores, 800 neurons 11 s), so :func:`simulate_stimuli_segmented` also cuts each
window into segments simulated side by side, each behind a warm-up stretch, turning a
long run of few neurons into a short run of many.

Integration: forward Euler at the step the caller gives (the model uses 0.2 ms). The
exponent ``(V - V_T) / Delta_T`` is clipped at :data:`EXP_CLIP` so that a spike's
upswing cannot overflow to inf/NaN inside one step; the step that crosses
``V_peak`` is the spike and resets V at once.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from qsnmc import block_mean
from qsnmc_plugins.adex.brian_setup import brian2_module, run_with_fallback
from qsnmc_plugins.adex.parameters import AdExParameters

#: upper clip of the exponent (V - V_T) / Delta_T: exp(30) ~ 1e13 keeps every step finite
EXP_CLIP = 30.0

#: SI value and Brian2 unit of one unit of each field's suffix
_UNITS = {"pF": (1e-12, "farad"), "nS": (1e-9, "siemens"), "mV": (1e-3, "volt"), "ms": (1e-3, "second"),
          "pA": (1e-12, "amp")}
#: field of AdExParameters -> (Brian2 variable: the field's name before its unit, scale to SI units, Brian2 unit)
_SI = {f.name: (f.name.rsplit("_", 1)[0], *_UNITS[f.name.rsplit("_", 1)[1]])
       for f in fields(AdExParameters) if f.name != "latency_ms"}

#: the dynamics, then every parameter as a per-neuron constant, then the neuron's current column
EQUATIONS = """
dv/dt = (-gL*(v - EL) + gL*DeltaT*exp(clip((v - VT)/DeltaT, -100, EXP_CLIP)) - w - w2 + adex_current(t, col)) / C : volt
dw/dt = (a*(v - EL) - w) / tauw : amp
dw2/dt = -w2 / tauw2 : amp
""" + "".join(f"{var} : {unit} (constant)\n" for var, _, unit in _SI.values()) + "col : integer (constant)\n"


def coarsen_current(current_pA: np.ndarray, factor: float) -> np.ndarray:
    """The current on a simulation grid ``factor`` times the sampling step.

    ``factor >= 1`` (an integer): averaged over blocks of ``factor`` samples. ``factor < 1``
    (``1 / n``): each sample held for ``n`` substeps (a zero-order hold, as injected).
    """
    cur = np.asarray(current_pA, dtype=np.float64)
    if factor < 1:
        return np.repeat(cur, int(round(1.0 / factor)))
    return block_mean(cur, int(round(factor)))


@dataclass
class PopulationResult:
    """Spike trains of a simulated population."""

    spike_times_s: list[np.ndarray]  #: one sorted array of spike times (s, protocol time) per parameter set
    finite: np.ndarray  #: False for a parameter set whose final state is not finite (a blown-up simulation)
    voltage_mV: np.ndarray | None = None  #: (n_neurons, n_steps) membrane voltage, when recorded


def parameter_columns(params: Sequence[AdExParameters]) -> dict[str, np.ndarray]:
    """The population as one array per field (the field's own units)."""
    return {f.name: np.array([getattr(p, f.name) for p in params], dtype=np.float64) for f in fields(AdExParameters)}


def _protocol_current(current_pA: np.ndarray, dt_s: float, stop_s: float) -> np.ndarray:
    """The current (pA) of the steps ``0..stop_s``, or ValueError if it does not cover them."""
    n_steps = int(round(stop_s / dt_s))
    cur = np.asarray(current_pA, np.float64)
    if cur.shape[0] < n_steps:
        raise ValueError(f"current covers {cur.shape[0] * dt_s:g} s, simulation needs {stop_s:g} s")
    return cur[:n_steps]


def simulate_population(params: Sequence[AdExParameters], current_pA: np.ndarray, dt_s: float,
                        stop_s: float) -> PopulationResult:
    """Simulate every parameter set from rest (V = E_L, w = 0) over ``0..stop_s`` in one run:
    the spike times (s) of each neuron and a finiteness flag per neuron.

    Args:
        params: the parameter sets, one neuron each.
        current_pA: injected current (pA), sample ``k`` at ``k * dt_s``; must cover ``stop_s``.
        dt_s: sampling and integration step (s).
    """
    matrix, col = _protocol_current(current_pA, dt_s, stop_s)[:, None], np.zeros(len(params), np.int64)
    return run_with_fallback(lambda: run_columns(parameter_columns(params), col, matrix, dt_s, 0.0))


def simulate_stimuli_segmented(params: Sequence[AdExParameters], currents_pA: Sequence[np.ndarray], dt_s: float,
                               stops_s: Sequence[float], n_segments: int, warmup_s: float) -> list[PopulationResult]:
    """Approximate :func:`simulate_population` of each stimulus over ``0..stop_s`` by segments run
    side by side, all stimuli in one Brian2 run (one result per stimulus).

    Each ``0..stop_s`` is cut into ``n_segments`` equal segments; segment j is simulated by its
    own copy of every neuron from rest, starting ``warmup_s`` before the segment (zero current
    before time 0), and only its spikes inside the segment are kept. The result differs from a
    continuous run only where the warm-up has not erased the initial state (adaptation decays
    with tau_w; keep ``warmup_s`` a few tau_w long).

    Every (stimulus, segment) pair is a current column; segments of all stimuli have the
    length of the longest stimulus' segment (shorter ones padded with zero current, their
    spikes there dropped). With ``n_segments == 1`` no warm-up is needed (runs start at 0).
    """
    seg = max(int(np.ceil(int(round(stop / dt_s)) / n_segments)) for stop in stops_s)
    warm = int(round(warmup_s / dt_s)) if n_segments > 1 else 0
    blocks = []
    for cur, stop in zip(currents_pA, stops_s):
        padded = np.concatenate([np.zeros(warm), _protocol_current(cur, dt_s, stop), np.zeros(seg * n_segments)])
        blocks.extend(padded[j * seg : j * seg + warm + seg] for j in range(n_segments))
    matrix = np.stack(blocks, axis=1)
    base = parameter_columns(params)
    n = len(params)
    n_cols = len(blocks)
    tiled = {k: np.tile(v, n_cols) for k, v in base.items()}  # neuron = column * n + candidate
    col = np.repeat(np.arange(n_cols), n)
    res = run_with_fallback(lambda: run_columns(tiled, col, matrix, dt_s, 0.0))
    out = []
    for s, stop in enumerate(stops_s):
        n_steps = int(round(stop / dt_s))
        trains = []
        for c in range(n):
            parts = []
            for j in range(n_segments):
                t = res.spike_times_s[(s * n_segments + j) * n + c] + (j * seg - warm) * dt_s
                lo, hi = j * seg * dt_s, min((j + 1) * seg, n_steps) * dt_s
                parts.append(t[(t >= lo - 1e-12) & (t < hi - 1e-12)])
            trains.append(np.concatenate(parts))
        finite = res.finite[s * n_segments * n : (s + 1) * n_segments * n].reshape(n_segments, n).all(axis=0)
        out.append(PopulationResult(trains, finite))
    return out


def run_columns(columns: dict[str, np.ndarray], col: np.ndarray, current_pA: np.ndarray, dt_s: float, t0_s: float,
                record_voltage: bool = False) -> PopulationResult:
    """One Brian2 run: neuron i has parameters ``columns[*][i]`` and current ``current_pA[:, col[i]]``.

    Args:
        columns: one array per :class:`AdExParameters` field (its own units).
        col: current column of each neuron.
        current_pA: ``(n_steps, n_columns)`` injected currents (pA); the run lasts ``n_steps``.
        dt_s: step (s).
        t0_s: protocol time of step 0 (s), added to the spike times.
        record_voltage: also return V (mV) at the start of every step (memory: 8 bytes
            per neuron and step).
    """
    b2 = brian2_module()
    n = col.size
    n_steps = current_pA.shape[0]
    dt = dt_s * b2.second
    # A fixed name keeps the generated code identical from run to run (cache hits).
    current = b2.TimedArray(np.ascontiguousarray(current_pA) * 1e-12 * b2.amp, dt=dt, name="adex_current")
    group = b2.NeuronGroup(n, EQUATIONS, threshold="v > Vpeak", reset="v = Vr; w += b; w2 += b2", method="euler",
                           dt=dt, namespace={"adex_current": current, "EXP_CLIP": EXP_CLIP}, name="adex_population")
    for field, (var, scale, _) in _SI.items():
        setattr(group, var + "_", columns[field] * scale)  # "name_" sets plain SI floats
    group.col = col
    group.v_ = columns["EL_mV"] * 1e-3
    group.w_ = 0.0
    group.w2_ = 0.0
    monitor = b2.SpikeMonitor(group, record=True, name="adex_spikes")
    net = b2.Network(group, monitor)
    vmon = None
    if record_voltage:
        vmon = b2.StateMonitor(group, "v", record=True, name="adex_voltage")
        net.add(vmon)
    net.run(n_steps * dt, namespace={})
    idx = np.asarray(monitor.i[:], dtype=np.int64)
    # each spike is reported its neuron's latency after the step that crossed V_peak
    t = np.asarray(monitor.t[:] / b2.second, dtype=np.float64) + t0_s + columns["latency_ms"][idx] * 1e-3
    order = np.argsort(idx, kind="stable")
    counts = np.bincount(idx, minlength=n)
    trains = np.split(t[order], np.cumsum(counts)[:-1])
    finite = (np.isfinite(np.asarray(group.v_[:])) & np.isfinite(np.asarray(group.w_[:]))
              & np.isfinite(np.asarray(group.w2_[:])))
    volt = np.asarray(vmon.v_[:], dtype=np.float64) * 1e3 if vmon is not None else None
    return PopulationResult([np.asarray(tr) for tr in trains], finite, volt)
