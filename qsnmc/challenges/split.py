"""Turn recorded stimuli into a challenge's training and test windows: the split every importer shares.

A :class:`Recording` is one stimulus as an importer read it: its current over the whole
protocol, the voltage of each repetition (NaN where a sample was not kept) and the spike
times of each repetition. :func:`split_recordings` chooses the windows:

- a time split (``train_until_s``, the 2009 design): every stimulus trains on
  ``0 .. train_until_s`` and is tested on ``train_until_s .. its end``;
- held-out stimuli (``test_stimuli``): each named stimulus is tested on its whole protocol
  and not trained on; the others train on their whole protocol (or on ``0 .. train_until_s``
  when both options are given);
- the R floor (the 2007 rule): a stimulus whose intrinsic reliability R in its test window
  (mean pairwise Gamma of its repetitions, at Delta) is under ``r_floor`` is not tested; it
  stays a training stimulus, and ``info["test_excluded"]`` says why (the manifest keeps it
  in ``provenance["stimuli"][NAME]``, and every table header shows it).

A split that leaves no training or no test data is refused with a
:class:`~qsnmc.challenges.textdata.DataImportError` naming the option.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from qsnmc.challenges.store import ChallengeStimulus
from qsnmc.challenges.textdata import DataImportError
from qsnmc.scoring.metrics import intrinsic_reliability


@dataclass
class Recording:
    """One recorded stimulus over its whole protocol, as an importer read it.

    Attributes:
        name: stimulus name (letters, digits, ``-``, ``_``).
        dt_s: sampling step (s).
        current_pA: injected current (pA), shape ``(n_samples,)``.
        voltage_mV: recorded voltage (mV), shape ``(n_repetitions, n_samples)``; NaN where a
            sample was not kept (a training window's samples must all be finite).
        trains: spike times (s from the start of the protocol) of each repetition.
        info: what the importer says about it (kept in the manifest's provenance).
    """

    name: str
    dt_s: float
    current_pA: np.ndarray
    voltage_mV: np.ndarray
    trains: list[np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.current_pA.shape[0] * self.dt_s


@dataclass(frozen=True)
class Split:
    """How to split recordings into training and test windows (see the module docstring).

    Attributes:
        train_until_s: end of the training and start of the test window (s), or None.
        test_stimuli: stimuli held out whole for the test.
        r_floor: least R in a test window for the stimulus to be tested.
        delta_s: coincidence window (s) of Gamma and R.
    """

    train_until_s: float | None = None
    test_stimuli: tuple[str, ...] = ()
    r_floor: float = 0.3
    delta_s: float = 0.004

    def describe(self) -> dict[str, Any]:
        """The split as saved in a manifest's provenance."""
        return {"train_until_s": self.train_until_s, "test_stimuli": list(self.test_stimuli),
                "r_floor": self.r_floor, "delta_s": self.delta_s}


def check_split(split: Split, recordings: Sequence[Recording]) -> None:
    """Refuse options that cannot split these recordings, naming the option.

    Raises:
        DataImportError: no split chosen, an unknown held-out stimulus, a ``--train-until``
            off the sample grid or outside a recording, or nothing left to train on.
    """
    names = [r.name for r in recordings]
    if split.train_until_s is None and not split.test_stimuli:
        raise DataImportError("no split chosen: give --train-until SECONDS and/or --test-stimuli NAME,NAME")
    unknown = [s for s in split.test_stimuli if s not in names]
    if unknown:
        raise DataImportError(f"--test-stimuli {','.join(split.test_stimuli)}: no stimulus {', '.join(unknown)} "
                              f"(stimuli: {', '.join(names)})")
    if not math.isfinite(split.r_floor):
        raise DataImportError(f"--r-floor {split.r_floor!r}: expected a finite number")
    if not (math.isfinite(split.delta_s) and split.delta_s > 0):
        raise DataImportError(f"--delta-ms {split.delta_s * 1e3:g}: expected a positive number")
    check_delta(split.delta_s, recordings[0].dt_s if recordings else None)
    until = split.train_until_s
    timed = [r for r in recordings if r.name not in split.test_stimuli]
    if not timed:
        raise DataImportError(f"--test-stimuli {','.join(split.test_stimuli)}: holds out every stimulus, "
                              "which leaves no training data")
    if until is not None:
        dt = timed[0].dt_s
        if not math.isfinite(until) or abs(round(until / dt) * dt - until) > 1e-9:
            raise DataImportError(f"--train-until {until:g} s: not on the {dt * 1e3:g} ms sample grid")
        for r in timed:
            if not 0 < until < r.duration_s:
                raise DataImportError(
                    f"--train-until {until:g} s: leaves no {'training' if until <= 0 else 'test'} data in "
                    f"stimulus {r.name} ({r.duration_s:g} s): choose 0 < --train-until < {r.duration_s:g}"
                )


#: a coincidence window outside this range (s) is refused: the competitions used 2 and 4 ms
PLAUSIBLE_DELTA_S = (1e-4, 0.05)


def check_delta(delta_s: float, dt_s: float | None) -> None:
    """Refuse a Delta (s) no coincidence could be told by: under one sampling step or
    :data:`PLAUSIBLE_DELTA_S`, or above it (a unit slip: Delta is given in ms).

    Raises:
        DataImportError: naming ``--delta-ms`` and what is plausible.
    """
    low = max(PLAUSIBLE_DELTA_S[0], dt_s or 0.0)
    high = PLAUSIBLE_DELTA_S[1]
    if not low <= delta_s <= high:
        raise DataImportError(
            f"--delta-ms {delta_s * 1e3:g}: expected {low * 1e3:g}-{high * 1e3:g} ms (Delta is in ms, at least one "
            f"sampling step; the competitions used 2 and 4 ms)")


def _finite_voltage(rec: Recording, stop: int) -> np.ndarray:
    voltage = rec.voltage_mV[:, :stop]
    bad = np.argwhere(~np.isfinite(voltage))
    if bad.size:
        rep, sample = bad[0]
        raise DataImportError(
            f"stimulus {rec.name}, repetition {rep}: no voltage at {sample * rec.dt_s:g} s, inside the training "
            f"window 0-{stop * rec.dt_s:g} s: choose a split whose training windows hold recorded voltage"
        )
    return voltage


def split_recordings(
    recordings: Sequence[Recording], split: Split
) -> tuple[list[ChallengeStimulus], list[str], dict[str, float]]:
    """The challenge's stimuli, the names of the tested ones and R (rounded to 4 digits) of every test candidate.

    Each recording's ``info`` gains ``test_window_R`` and, for a stimulus under the floor,
    ``test_excluded`` (why it is training-only).

    Raises:
        DataImportError: options that cannot split the recordings (:func:`check_split`), a
            training window without voltage, or no stimulus reaching ``r_floor``.
    """
    check_split(split, recordings)
    stimuli, tested, reliability = [], [], {}
    until, floor = split.train_until_s, split.r_floor
    for rec in recordings:
        duration = rec.duration_s
        held_out = rec.name in split.test_stimuli
        start = 0.0 if held_out or until is None else until
        train_stop = None if held_out else (duration if until is None else until)
        test_window = None if (until is None and not held_out) else (start, duration)
        test_spikes = None
        if test_window is not None:
            test_spikes = [t[t >= start] for t in rec.trains]
            r = intrinsic_reliability(test_spikes, split.delta_s, duration=duration - start) \
                if len(test_spikes) >= 2 else float("nan")
            rec.info["test_window_R"] = r
            reliability[rec.name] = round(r, 4)
            span = f"{start:g}-{duration:g} s"
            if len(test_spikes) < 2:
                rec.info["test_excluded"] = f"1 repetition: R needs 2 (test window {span})"
            elif not r >= floor:
                rec.info["test_excluded"] = f"R = {round(r, 2) + 0.0:.2f} < {floor:g} in {span}"  # + 0.0: no "-0.00"
            if "test_excluded" in rec.info:
                test_window = test_spikes = None
                if held_out:  # a held-out stimulus under the floor still serves for training
                    train_stop = duration
            else:
                tested.append(rec.name)
        train_window = train_spikes = train_voltage = None
        if train_stop is not None:
            n_train = int(round(train_stop / rec.dt_s))
            train_window = (0.0, train_stop)
            train_voltage = _finite_voltage(rec, n_train)
            train_spikes = [t[t < train_stop] for t in rec.trains]
        stimuli.append(ChallengeStimulus(
            rec.name, rec.dt_s, rec.current_pA, len(rec.trains), train_window_s=train_window,
            train_voltage_mV=train_voltage, train_spikes_s=train_spikes, test_window_s=test_window,
            test_spikes_s=test_spikes,
        ))
    if not tested:
        known = {k: v for k, v in reliability.items() if not math.isnan(v)}
        best = f" (highest: stimulus {max(known, key=known.get)}, R = {max(known.values()):.2f})" if known else ""
        raise DataImportError(f"--r-floor {floor:g}: no stimulus has R >= {floor:g} in its test window{best}; "
                              "lower --r-floor" + ("" if known else " or record at least 2 repetitions"))
    return stimuli, tested, reliability
