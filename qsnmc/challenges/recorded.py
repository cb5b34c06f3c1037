"""Challenges from one's own recordings (NWB files, plain arrays): what every such importer shares.

The steps after reading: the current of a stimulus from its sweeps (equal within a stated
tolerance), spikes by the harness's rule (:func:`qsnmc.scoring.spikes.spike_times_from_voltage`,
upward crossings of a threshold), the split (:mod:`qsnmc.challenges.split`), and the atomic
write with a manifest naming the source file and its sha256.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qsnmc.challenges.repetitions import ABS_TOL_PA
from qsnmc.challenges.split import Recording, Split, split_recordings
from qsnmc.challenges.store import Challenge, ChallengeStimulus, sha256_file, write_challenge
from qsnmc.challenges.textdata import DataImportError, voltage_storage
from qsnmc.scoring.spikes import spike_times_from_voltage

#: default largest difference (pA) between the currents of two sweeps of one stimulus: one default
#: for every importer's --current-tolerance (import-neo compares 5 ms means with it, import-nwb samples)
CURRENT_TOLERANCE_PA = ABS_TOL_PA


def stimulus_current(name: str, currents: np.ndarray, sweeps: Sequence[str], tolerance_pA: float) -> tuple[np.ndarray, dict]:
    """One stimulus' current (pA) from its sweeps' currents, which must agree within ``tolerance_pA``.

    Args:
        name: the stimulus, for messages.
        currents: ``(n_sweeps, n_samples)`` in pA.
        sweeps: the sweeps' names, for messages.
        tolerance_pA: largest allowed ``|I_sweep - I_first|`` (pA).

    Returns:
        The first sweep's current (the others agree with it) and what was measured.

    Raises:
        DataImportError: a sweep whose current differs by more than the tolerance, naming it.
    """
    deviation = np.abs(currents - currents[0])
    worst = deviation.max(axis=1)
    if worst.size and worst.max() > tolerance_pA:
        k = int(np.argmax(worst))
        at = int(np.argmax(deviation[k]))
        raise DataImportError(
            f"stimulus {name}: sweep {sweeps[k]}'s current differs from sweep {sweeps[0]}'s by {worst[k]:.3g} pA "
            f"(sample {at}), more than the tolerance {tolerance_pA:g} pA (--current-tolerance): if they are not "
            "repetitions of one stimulus, name each stimulus' sweeps with --stimulus NAME=SWEEP,..."
        )
    return currents[0], {"sweeps": list(sweeps), "max_abs_current_difference_pA": float(worst.max(initial=0.0))}


def detect_trains(voltage_mV: np.ndarray, dt_s: float, threshold_mV: float, where: str) -> list[np.ndarray]:
    """Spike times (s) of each repetition: upward crossings of ``threshold_mV`` (the harness's rule).

    Raises:
        DataImportError: a voltage with missing (NaN) or infinite samples, naming ``where``.
    """
    bad = np.argwhere(~np.isfinite(voltage_mV))
    if bad.size:
        raise DataImportError(f"{where}, repetition {bad[0][0]}: voltage missing (NaN) at {bad[0][1] * dt_s:g} s; "
                              "spike detection needs the whole recording")
    return [np.asarray(t, np.float64) for t in spike_times_from_voltage(voltage_mV, dt_s, threshold_mV)]


def spike_rule(threshold_mV: float) -> str:
    """The spike rule, as shown after an import and kept in the provenance."""
    return f"upward crossings of {threshold_mV:g} mV of the recorded voltage (qsnmc.spike_times_from_voltage)"


def source_of(path: Path) -> dict[str, Any]:
    """The source file as a manifest names it: path, sha256 and size."""
    path = Path(path).resolve()
    return {"source_file": str(path), "source_sha256": sha256_file(path), "source_bytes": path.stat().st_size}


def write_recorded(
    dest_dir: str | Path,
    *,
    name: str,
    recordings: Sequence[Recording],
    split: Split | None,
    threshold_mV: float,
    provenance: dict[str, Any],
    description: str,
    stimuli: list[ChallengeStimulus] | None = None,
) -> Path:
    """Split the recordings (or take ``stimuli`` already split) and write the challenge atomically.

    Args:
        dest_dir: the challenge folder (replaced if it exists; nothing is written on an error).
        name: the challenge's name.
        recordings: the recorded stimuli (their ``info`` goes to ``provenance["stimuli"]``).
        split: how to split them; None when ``stimuli`` are given.
        threshold_mV: the spike threshold the spikes were detected with (mV).
        provenance: the importer's provenance (source file, units...); the split is added.
        description: what the challenge is; the split is appended (unless ``stimuli`` are given).
        stimuli: already split stimuli (a challenge exported by qsnmc keeps its own windows).

    Raises:
        DataImportError: a split that leaves no training or no test data.
    """
    delta_s = split.delta_s if split else float(provenance["delta_s"])
    if stimuli is None:
        stimuli, tested, _ = split_recordings(recordings, split)
        provenance = {**provenance, "split": split.describe()}
    else:
        tested = [s.name for s in stimuli if s.test_window_s is not None]
    if not any(s.train_window_s is not None for s in stimuli):
        raise DataImportError("the split leaves no training data")
    voltages = [s.train_voltage_mV.ravel() for s in stimuli if s.train_voltage_mV is not None]
    lsb, rounding = voltage_storage(np.concatenate(voltages))
    windows = "; ".join(
        f"{s.name}: train {_span(s.train_window_s)}, test {_span(s.test_window_s)}" for s in stimuli
    )
    provenance = {
        **provenance,
        "delta_s": delta_s,
        "threshold_mV": threshold_mV,
        "voltage_storage": f"int16 counts of {lsb} mV (largest rounding error {rounding:.2g} mV)" if lsb else "float32",
        "stimuli": {rec.name: rec.info for rec in recordings},
    }
    if split is not None:  # a challenge that keeps its own windows keeps its own description
        description = (f"{description}; {windows}; tested: {', '.join(tested)}; Delta = {delta_s * 1e3:g} ms; "
                       f"spikes: upward crossings of {threshold_mV:g} mV")
    challenge = Challenge(name=name, stimuli=stimuli, delta_s=delta_s, threshold_mV=threshold_mV,
                          description=description)
    return write_challenge(dest_dir, challenge, voltage_lsb_mV=lsb, provenance=provenance)


def _span(window: tuple[float, float] | None) -> str:
    return "-" if window is None else f"{window[0]:g}-{window[1]:g} s"
