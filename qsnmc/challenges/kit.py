"""The public kit of a challenge: what a participant may see, and nothing else.

A participant who models the cell in any simulator gets, per training stimulus, the injected
current, the voltage of every repetition and the recorded spike times inside the training
window; per test stimulus, the current and the window to predict; and dt, Delta and the units.
No test-window spike time, voltage sample, spike count or reliability leaves the challenge:
the kit is written from :meth:`Challenge.training_data` and :meth:`Challenge.test_stimuli`,
which never hold them. Layout (``DIR``)::

    README.md                      the format, in words
    kit.json                       name, dt_s, delta_s, units, per stimulus: repetitions, windows (s), files
    <stimulus>/current.txt         current (pA), one sample per line, the whole protocol from t = 0
    <stimulus>/voltage_allrep.txt  training stimuli: voltage (mV), one column per repetition, one
                                   row per sample of the training window
    <stimulus>/spiketimes-<r>.txt  training stimuli: recorded spike times (s, protocol time) of repetition r
    <name>.nwb                     the same as an NWB file (voltage NaN outside the training windows)

Text follows the 2007/2009 competitions' layout (one current file, one voltage column per
repetition). The current is written with 17 significant digits, so it reads back exactly;
the voltage with 9, the precision it is stored at (float32).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from qsnmc.challenges.store import Challenge, ChallengeStimulus
from qsnmc.data import Stimulus, TrainingStimulus
from qsnmc.scoring.metrics import intrinsic_reliability

KIT_FORMAT = "qsnmc-kit/1"
KIT_JSON = "kit.json"
CURRENT_FILE = "current.txt"
VOLTAGE_FILE = "voltage_allrep.txt"
SPIKES_FILE = "spiketimes-{r}.txt"


def public_challenge(challenge: Challenge) -> Challenge:
    """The challenge as a participant sees it: its training data and test stimuli, rebuilt as a
    :class:`Challenge` without test-window spikes (for the NWB export)."""
    train = {s.name: s for s in challenge.training_data().stimuli}
    test = {s.name: s for s in challenge.test_stimuli()}
    stimuli = []
    for s in challenge.stimuli:
        t: TrainingStimulus | None = train.get(s.name)
        p: Stimulus | None = test.get(s.name)
        if t is None and p is None:
            continue
        stimuli.append(ChallengeStimulus(
            name=s.name, dt_s=s.dt_s, current_pA=np.asarray((t or p).current_pA), n_repetitions=s.n_repetitions,
            train_window_s=None if t is None else t.window_s,
            train_voltage_mV=None if t is None else np.asarray(t.voltage_mV),
            train_spikes_s=None if t is None else [np.asarray(x) for x in t.spike_times_s],
            test_window_s=None if p is None else p.window_s, test_spikes_s=None,
        ))
    return Challenge(name=challenge.name, stimuli=stimuli, delta_s=challenge.delta_s,
                     threshold_mV=challenge.threshold_mV, description=challenge.description, manifest={})


def kit_info(challenge: Challenge) -> dict[str, Any]:
    """``kit.json``: the challenge's public settings and, per stimulus, its windows and files.

    A training stimulus of two or more repetitions also gets its reliability R in the training
    window (computed from the kit's own spike times, so a participant can check it)."""
    stimuli = []
    for s in public_challenge(challenge).stimuli:
        entry: dict[str, Any] = {
            "name": s.name, "n_repetitions": s.n_repetitions, "n_samples": int(s.current_pA.shape[0]),
            "train_window_s": list(s.train_window_s) if s.train_window_s else None,
            "test_window_s": list(s.test_window_s) if s.test_window_s else None,
            "current": f"{s.name}/{CURRENT_FILE}",
        }
        if s.train_window_s is not None:
            entry["voltage"] = f"{s.name}/{VOLTAGE_FILE}"
            entry["spike_times"] = [f"{s.name}/{SPIKES_FILE.format(r=r)}" for r in range(s.n_repetitions)]
            if s.n_repetitions >= 2:
                win = s.train_window_s
                entry["train_reliability"] = intrinsic_reliability(s.train_spikes_s, challenge.delta_s,
                                                                   duration=win[1] - win[0])
        stimuli.append(entry)
    return {
        "format": KIT_FORMAT, "challenge": challenge.name, "description": challenge.description,
        "dt_s": float(challenge.stimuli[0].dt_s), "delta_s": float(challenge.delta_s),
        "threshold_mV": float(challenge.threshold_mV),
        "units": {"time": "s", "current": "pA", "voltage": "mV"},
        "stimuli": stimuli, "nwb": f"{challenge.name}.nwb",
    }


def _write_lines(path: Path, values: np.ndarray, fmt: str) -> None:
    """One row per line: a 1-D array as one column, a 2-D array ``(rows, columns)`` as tab-separated columns."""
    np.savetxt(path, values, fmt=fmt, delimiter="\t")


def _write_stimulus(folder: Path, s: ChallengeStimulus) -> None:
    """A stimulus' text files: its current, and for a training stimulus its voltage and spike times."""
    folder.mkdir()
    _write_lines(folder / CURRENT_FILE, np.asarray(s.current_pA, np.float64), "%.17g")
    if s.train_window_s is None:
        return
    _write_lines(folder / VOLTAGE_FILE, np.asarray(s.train_voltage_mV, np.float64).T, "%.9g")
    for r, train in enumerate(s.train_spikes_s):
        _write_lines(folder / SPIKES_FILE.format(r=r), np.asarray(train, np.float64), "%.17g")


def write_kit(challenge: Challenge, dest: str | Path, *, nwb: bool = True) -> Path:
    """Write the public kit of ``challenge`` into the new folder ``dest``, whole or not at all.

    Raises:
        FileExistsError: ``dest`` exists.
    """
    from qsnmc.challenges.nwb import export_nwb  # pynwb: loaded only when a kit is written

    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists")
    public = public_challenge(challenge)
    info = kit_info(challenge)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        for s in public.stimuli:
            _write_stimulus(tmp / s.name, s)
        (tmp / KIT_JSON).write_text(json.dumps(info, indent=1) + "\n")
        (tmp / "README.md").write_text(kit_readme(info))
        if nwb:
            export_nwb(public, tmp / info["nwb"], public=True)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _window(w: list[float] | None) -> str:
    return "-" if w is None else f"{w[0]:g}-{w[1]:g} s"


def kit_readme(info: dict[str, Any]) -> str:
    """The kit's README.md: what each file holds, and what to hand back for scoring."""
    rows = "\n".join(
        f"| {s['name']} | {s['n_repetitions']} | {_window(s['train_window_s'])} | {_window(s['test_window_s'])} | "
        + (f"{s['train_reliability']:.3f}" if "train_reliability" in s else "-") + " |"
        for s in info["stimuli"])
    return f"""# Public kit of the qsnmc challenge `{info['challenge']}`

{info['description']}

Sampling step dt = {info['dt_s'] * 1e3:g} ms; coincidence window Delta = {info['delta_s'] * 1e3:g} ms; spikes are
upward crossings of {info['threshold_mV']:g} mV. Units: time s, current pA, voltage mV. Times are protocol
time: sample k of a stimulus is at t = k * dt.

| stimulus | repetitions | training window | test window (predict) | R in training window |
|---|---|---|---|---|
{rows}

## Files

- `kit.json`: the same facts, machine-readable (windows in s, file names per stimulus).
- `<stimulus>/current.txt`: the injected current (pA), one sample per line, the whole protocol from t = 0
  (test windows included: it is the input your model is driven with).
- `<stimulus>/voltage_allrep.txt` (training stimuli): the recorded voltage (mV), one tab-separated column per
  repetition, one row per sample of the training window; row 0 is at the window's start.
- `<stimulus>/spiketimes-<r>.txt` (training stimuli): the recorded spike times (s) of repetition r in the
  training window, one per line.
- `{info['nwb']}`: the same data as an NWB file (one sweep per repetition; voltage NaN outside the training
  window; spike times and windows in `processing/qsnmc`).

Nothing of the test windows' recordings is here: no voltage, no spike times, no counts.

## What to hand back

For every test stimulus, predicted spike times (s) inside its test window, strictly increasing, at most
500 Hz: one file `<stimulus>.txt` (one train, compared with every repetition) or one file per repetition
`<stimulus>-<r>.txt`, one time per line, with a first line `# unit: s` (or `# unit: ms`). The organiser
scores them with `qsnmc score FILES --challenge {info['challenge']} --label YOUR-NAME`: the coincidence
factor Gamma with Delta against each hidden repetition, divided by the test window's reliability R.
"""
