"""qsnmc: a benchmark harness for single-neuron spike-time prediction.

The plugin API: everything a model plugin, its tests and its benchmarks may use.
Built-in plugins use exactly these names; any other ``qsnmc`` module is internal.

Writing a model:
- :data:`hookimpl`: marks a plugin's ``qsnmc_register_models`` implementation.
- :class:`Model`: the base class a model may derive from; :class:`NotFittedError`: its ``predict``
  before ``fit``.
- :class:`TrainingData`, :class:`TrainingStimulus`, :class:`Stimulus`: what a model receives.
- :func:`bar`: a progress bar that ``qsnmc run --quiet`` silences.

The competition's rules, for fitting and selection:
- :func:`spike_times_from_voltage`: spike detection (upward crossings of a threshold).
- :func:`coincidence_factor`, :func:`intrinsic_reliability`, :class:`InvalidPrediction`:
  the official Gamma and R.

Validation on held-out training data (never the test window):
- :meth:`TrainingData.time_split`, :meth:`TrainingData.stimulus_folds`,
  :meth:`TrainingData.folds`: :class:`Fold` objects of :class:`HeldOutStimulus`.
- :func:`score_heldout`, :func:`validate_model`: Gamma/R per stimulus, stimuli weighted
  equally, unreliable stimuli left out, never NaN (:class:`ValidationScore`);
  :func:`score_trains` scores one held-out stretch a plugin chose itself.

The fitting toolkit, shared by every built-in:
- settings: :func:`setting` (a field of a model's frozen ``Settings`` dataclass),
  :func:`settings_record`, :func:`settings_schema`, :class:`SettingsError`.
- signals: :func:`samples_per_step`, :func:`block_mean`, :func:`block_max`, :func:`lowpass`,
  :func:`lowpass_bank` (unit DC gain, started at steady state or at a given value).
- spike trains: :func:`clip_to_window` (half-open windows), :func:`spike_window_mask` (the samples around
  spikes), :func:`stretch_reliability` (R, NaN guard).
- objective and search: :class:`CountPenalty`, :class:`Candidate`, :func:`best_candidate`,
  :func:`candidates_record`, :class:`SearchProgress`.
- the fit record: :func:`fit_record`, :func:`held_out_record`, :func:`curve`.
- least squares that give the same bits on any CPU and BLAS: :func:`exact_gram`, :class:`NormalEquations`,
  :func:`cholesky_solve`, :func:`linear_least_squares`, :func:`bounded_levenberg_marquardt`;
  and an exp with the same bits on any CPU: :func:`portable_exp`; torch's CPU kernels fixed to ones that
  round alike on any x86-64 CPU: :func:`portable_torch_numerics`.

Testing and benchmarking a model in-process:
- :func:`load_challenge`: a challenge folder (``challenge_dir(name)`` finds one by name).
- :func:`evaluate_in_process`: fit, predict the test window and score, unsandboxed.
"""
from qsnmc.hookspecs import hookimpl
from qsnmc.data import Fold, HeldOutStimulus, Stimulus, TrainingData, TrainingStimulus
from qsnmc.model import Model, NotFittedError
from qsnmc.progress import SearchProgress, bar
from qsnmc.settings import SettingsError, setting, settings_record, settings_schema
from qsnmc.fitting.signals import block_max, block_mean, lowpass, lowpass_bank, samples_per_step
from qsnmc.scoring.trains import clip_to_window, spike_window_mask, stretch_reliability
from qsnmc.fitting.objective import CountPenalty
from qsnmc.fitting.search import Candidate, best_candidate, candidates_record
from qsnmc.fitting.record import curve, fit_record, held_out_record
from qsnmc.fitting.portable_exp import exp as portable_exp
from qsnmc.fitting.torch_numerics import portable_torch_numerics
from qsnmc.fitting.exact import (NormalEquations, bounded_levenberg_marquardt, cholesky_solve, exact_gram,
                                 linear_least_squares)
from qsnmc.scoring.spikes import spike_times_from_voltage
from qsnmc.scoring.metrics import InvalidPrediction, coincidence_factor, intrinsic_reliability
from qsnmc.scoring.validation import HeldOutScore, ValidationScore, score_heldout, score_trains, validate_model
from qsnmc.challenges.store import load_challenge
from qsnmc.challenges.datadir import challenge_dir
from qsnmc.scoring.evaluation import InProcessEvaluation, evaluate_in_process

__version__ = "0.1.0"
__all__ = [
    "hookimpl", "Model", "NotFittedError", "TrainingData", "TrainingStimulus", "Stimulus", "bar",
    "spike_times_from_voltage", "coincidence_factor", "intrinsic_reliability", "InvalidPrediction",
    "Fold", "HeldOutStimulus", "HeldOutScore", "ValidationScore", "score_heldout", "score_trains", "validate_model",
    "load_challenge", "challenge_dir", "evaluate_in_process", "InProcessEvaluation",
    "setting", "settings_record", "settings_schema", "SettingsError", "SearchProgress",
    "samples_per_step", "block_mean", "block_max", "lowpass", "lowpass_bank", "clip_to_window", "spike_window_mask",
    "stretch_reliability",
    "CountPenalty", "Candidate", "best_candidate", "candidates_record", "fit_record", "held_out_record", "curve",
    "exact_gram", "NormalEquations", "cholesky_solve", "linear_least_squares", "bounded_levenberg_marquardt",
    "portable_exp", "portable_torch_numerics",
    "__version__",
]
