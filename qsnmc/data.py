"""What a model receives: the public training data and the stimuli to predict.

Units: time in seconds (s), current in picoampere (pA), voltage in millivolt (mV).
Every array a model sees is a read-only NumPy array. Nothing here ever holds
test-window voltage or test-window spike times: those stay with the scoring process.

A challenge has one or more *stimuli* (an injected current protocol, recorded
over several repetitions). A stimulus may appear in training (with its recorded
voltage inside ``window_s``), in the test (current only), or in both, as in the
2009 competition where the first 39 s of the same 60 s protocol train and the
last 21 s test.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _readonly(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class TrainingStimulus:
    """One stimulus of the training set.

    Attributes:
        name: the stimulus' name, shared with the :class:`Stimulus` of the same protocol.
        dt_s: sampling step (s).
        current_pA: injected current over the whole protocol, shape ``(n_samples,)``;
            sample ``k`` is at time ``k * dt_s``.
        window_s: ``(start_s, stop_s)``, the training window; voltage and spikes are given inside it.
        voltage_mV: recorded membrane voltage, shape ``(n_repetitions, n_window_samples)``;
            column ``k`` is at time ``window_s[0] + k * dt_s``.
        spike_times_s: recorded spike times (s, absolute protocol time), one sorted array
            per repetition, all inside ``window_s``.
    """

    name: str
    dt_s: float
    current_pA: np.ndarray
    window_s: tuple[float, float]
    voltage_mV: np.ndarray
    spike_times_s: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "current_pA", _readonly(self.current_pA))
        object.__setattr__(self, "voltage_mV", _readonly(np.atleast_2d(self.voltage_mV)))
        object.__setattr__(self, "spike_times_s", tuple(_readonly(s) for s in self.spike_times_s))
        object.__setattr__(self, "window_s", (float(self.window_s[0]), float(self.window_s[1])))
        if len(self.spike_times_s) != self.voltage_mV.shape[0]:
            raise ValueError(
                f"stimulus {self.name!r}: {len(self.spike_times_s)} spike trains for "
                f"{self.voltage_mV.shape[0]} voltage repetitions"
            )

    @property
    def n_repetitions(self) -> int:
        return int(self.voltage_mV.shape[0])

    @property
    def duration_s(self) -> float:
        """Length of the whole protocol (s)."""
        return self.current_pA.shape[0] * self.dt_s

    @property
    def window_slice(self) -> slice:
        """Sample indices of the training window within ``current_pA``."""
        start = int(round(self.window_s[0] / self.dt_s))
        return slice(start, start + self.voltage_mV.shape[1])

    @property
    def window_current_pA(self) -> np.ndarray:
        """The current inside the training window, aligned with ``voltage_mV`` columns."""
        return self.current_pA[self.window_slice]


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Everything a model may learn from.

    Attributes:
        challenge: the challenge's name.
        stimuli: the training stimuli (one for a 2009-style challenge).
        delta_s: the coincidence window the challenge is scored with (s), for models
            that fit their parameters by maximising the coincidence factor.

    For a single-stimulus challenge, ``current_pA``, ``dt_s``, ``window_s``,
    ``voltage_mV`` and ``spike_times_s`` read through to that stimulus.
    """

    challenge: str
    stimuli: tuple[TrainingStimulus, ...]
    delta_s: float = 0.004

    def __post_init__(self) -> None:
        object.__setattr__(self, "stimuli", tuple(self.stimuli))
        if not self.stimuli:
            raise ValueError("training data needs at least one stimulus")
        dts = {s.dt_s for s in self.stimuli}
        if len(dts) != 1:
            raise ValueError(f"all training stimuli must share one sampling step, got {sorted(dts)}")

    def _only(self) -> TrainingStimulus:
        if len(self.stimuli) != 1:
            raise AttributeError(
                f"challenge {self.challenge!r} has {len(self.stimuli)} training stimuli: "
                "iterate over train.stimuli"
            )
        return self.stimuli[0]

    @property
    def dt_s(self) -> float:
        return self.stimuli[0].dt_s

    @property
    def current_pA(self) -> np.ndarray:
        return self._only().current_pA

    @property
    def window_s(self) -> tuple[float, float]:
        return self._only().window_s

    @property
    def voltage_mV(self) -> np.ndarray:
        return self._only().voltage_mV

    @property
    def spike_times_s(self) -> tuple[np.ndarray, ...]:
        return self._only().spike_times_s

    def stimulus(self, name: str) -> TrainingStimulus | None:
        """The training stimulus of that name, or None (e.g. a test-only stimulus)."""
        for s in self.stimuli:
            if s.name == name:
                return s
        return None

    # -- validation splits: held-out parts of the training data, never the test window ----
    def time_split(self, heldout_fraction: float = 0.25) -> "Fold":
        """Fit on the first part of every stimulus' training window, hold out the rest.

        The 2009 design inside the training data: each stimulus keeps its first
        ``1 - heldout_fraction`` of samples for fitting; the last ``heldout_fraction``
        (by samples) becomes a :class:`HeldOutStimulus` of the same name, so a model
        may warm up on the fitted part of the same recording, as on the test.

        Raises:
            ValueError: a fraction outside (0, 1), or a window too short to split.
        """
        if not 0.0 < heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be between 0 and 1, got {heldout_fraction}")
        fitted, heldout = [], []
        for s in self.stimuli:
            n = s.voltage_mV.shape[1]
            n_fit = int(round((1.0 - heldout_fraction) * n))
            if n_fit < 2 or n - n_fit < 2:
                raise ValueError(f"stimulus {s.name!r}: a {n}-sample training window is too short to split")
            start = s.window_s[0]
            cut_s = start + n_fit * s.dt_s
            trains = [np.asarray(t) for t in s.spike_times_s]
            fitted.append(TrainingStimulus(s.name, s.dt_s, s.current_pA, (start, cut_s), s.voltage_mV[:, :n_fit],
                                           tuple(t[t < cut_s] for t in trains)))
            heldout.append(HeldOutStimulus(
                Stimulus(s.name, s.dt_s, s.current_pA, (cut_s, s.window_s[1]), s.n_repetitions),
                tuple(t[t >= cut_s] for t in trains), s.voltage_mV[:, n_fit:]))
        return Fold(f"time split: last {heldout_fraction:g} of each stimulus held out",
                    TrainingData(self.challenge, tuple(fitted), self.delta_s), tuple(heldout))

    def stimulus_folds(self) -> list["Fold"]:
        """Leave-one-stimulus-out folds: each fits on every other stimulus and holds one out whole.

        The held-out stimulus is absent from the fold's training data, so a model must
        predict it from the current alone. Folds are in the order of ``stimuli``.

        Raises:
            ValueError: fewer than two training stimuli.
        """
        if len(self.stimuli) < 2:
            raise ValueError(f"challenge {self.challenge!r} has {len(self.stimuli)} training stimulus: "
                             "leave-one-stimulus-out needs at least 2 (use time_split)")
        folds = []
        for i, s in enumerate(self.stimuli):
            rest = self.stimuli[:i] + self.stimuli[i + 1:]
            folds.append(Fold(f"stimulus {s.name} held out", TrainingData(self.challenge, rest, self.delta_s),
                              (HeldOutStimulus(Stimulus(s.name, s.dt_s, s.current_pA, s.window_s, s.n_repetitions),
                                               s.spike_times_s, s.voltage_mV),)))
        return folds

    def folds(self, split: str = "time", heldout_fraction: float = 0.25) -> list["Fold"]:
        """Validation folds by name: ``"time"`` (one :meth:`time_split` fold) or
        ``"stimulus"`` (:meth:`stimulus_folds`, needs at least two stimuli)."""
        if split == "time":
            return [self.time_split(heldout_fraction)]
        if split == "stimulus":
            return self.stimulus_folds()
        raise ValueError(f"split must be 'time' or 'stimulus', got {split!r}")


@dataclass(frozen=True, eq=False)
class HeldOutStimulus:
    """A held-out part of a training recording: what to predict, and what was recorded there.

    Attributes:
        stimulus: the :class:`Stimulus` to predict (current over the whole protocol, the
            held-out window).
        spike_times_s: the recorded spike times (s) inside the held-out window, one array
            per repetition.
        voltage_mV: the recorded voltage in the window, ``(n_repetitions, n_samples)`` (mV).
    """

    stimulus: "Stimulus"
    spike_times_s: tuple[np.ndarray, ...]
    voltage_mV: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "spike_times_s", tuple(_readonly(t) for t in self.spike_times_s))
        object.__setattr__(self, "voltage_mV", _readonly(np.atleast_2d(self.voltage_mV)))

    @property
    def name(self) -> str:
        return self.stimulus.name


@dataclass(frozen=True, eq=False)
class Fold:
    """One validation fold: a model fits on ``fit`` and predicts every ``heldout`` stimulus.

    Score it with :func:`qsnmc.score_heldout` or :func:`qsnmc.validate_model`.
    """

    label: str
    fit: TrainingData
    heldout: tuple[HeldOutStimulus, ...]


@dataclass(frozen=True, eq=False)
class Stimulus:
    """A stimulus whose spikes a model must predict.

    Attributes:
        name: the stimulus' name; when a :class:`TrainingStimulus` has the same name,
            it is the same protocol and its recording may be used to warm a model up.
        dt_s: sampling step (s).
        current_pA: injected current over the whole protocol, shape ``(n_samples,)``.
        window_s: ``(start_s, stop_s)``, the window whose spikes are predicted.
        n_repetitions: how many recorded repetitions the prediction will be compared with.
    """

    name: str
    dt_s: float
    current_pA: np.ndarray
    window_s: tuple[float, float]
    n_repetitions: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "current_pA", _readonly(self.current_pA))
        object.__setattr__(self, "window_s", (float(self.window_s[0]), float(self.window_s[1])))

    @property
    def duration_s(self) -> float:
        """Length of the window to predict (s)."""
        return self.window_s[1] - self.window_s[0]

    def shortened(self, stop_s: float) -> "Stimulus":
        """The same stimulus with its window (and current) cut at ``stop_s`` (for quick checks)."""
        n = int(round(stop_s / self.dt_s))
        return Stimulus(self.name, self.dt_s, self.current_pA[:n], (self.window_s[0], stop_s), self.n_repetitions)
