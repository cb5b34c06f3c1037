"""The DDF map's inputs: standardised voltage, delay coordinates, slow filters, RBF layer.

At step n the map sees (in standardised units, see :class:`Standardiser`):

- the RBF input ``z(n) = [v(n-l), v(n-l-tau), ..., v(n-l-(D-1)tau), g*s_1(n-l), ...]``,
  where l is ``input_lag`` (0 or 1 sample: with l = 1 the white recording noise of
  v(n), which also enters the target, is not an input, so the regression is not
  biased by errors in its variables), ``s_j`` the voltage low-pass filtered with time
  constant ``slow_taus_ms[j]`` (a slow state that can carry spike-frequency adaptation
  lasting ~100 ms, which a short delay embedding cannot), included only when g =
  ``slow_gain`` > 0; by default (g = 0) the slow filters enter only linearly: inside the
  RBF input they made free runs run away (benchmarks/README.md, "DDF: what was measured");
- the linear inputs ``[1, i(n), i(n+1), s_1(n), ..., v(n-l), ..., v(n-l-(D-1)tau)]``
  (the current enters linearly, as in Clark et al. 2022, see :func:`series.window_drive`; the delays enter
  linearly too when ``linear_state`` is set, a global restoring term where the local RBFs vanish);

and it forecasts ``v(n+1) - v(n)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qsnmc import TrainingData, lowpass_bank, portable_exp


@dataclass(frozen=True)
class EmbeddingConfig:
    """Settings that fix the map's input (delays in samples, time constants in ms)."""

    dimension: int
    tau: int
    slow_taus_ms: tuple[float, ...] = ()
    slow_gain: float = 0.0
    linear_state: bool = True
    input_lag: int = 1

    @property
    def n_rbf_inputs(self) -> int:
        """Dimension of the RBF input: the delays, plus the slow filters if ``slow_gain > 0``."""
        return self.dimension + (len(self.slow_taus_ms) if self.slow_gain > 0 else 0)

    @property
    def n_linear(self) -> int:
        """Number of linear inputs: bias, i(n), i(n+1), slow filters, and the delays if ``linear_state``."""
        return 3 + len(self.slow_taus_ms) + (self.dimension if self.linear_state else 0)

    @property
    def span(self) -> int:
        """History the embedding needs beyond the current sample (samples)."""
        return self.input_lag + (self.dimension - 1) * self.tau

    def lags(self) -> np.ndarray:
        """Sample lags of the delay coordinates: ``input_lag + j * tau``, j = 0..D-1."""
        return self.input_lag + self.tau * np.arange(self.dimension)

    def slow_alphas(self, dt_s: float) -> np.ndarray:
        """Per-step decay factors ``exp(-dt / tau_j)`` (``dt_s`` in s) of the slow filters: :func:`decay_factors`."""
        return decay_factors(dt_s, self.slow_taus_ms)

    def to_record(self, dt_s: float) -> dict:
        return {"dimension": self.dimension, "tau_samples": self.tau, "tau_ms": self.tau * dt_s * 1e3,
                "embedding_span_ms": self.span * dt_s * 1e3, "slow_taus_ms": list(self.slow_taus_ms),
                "slow_gain": self.slow_gain, "linear_state": self.linear_state, "input_lag_samples": self.input_lag}


@dataclass(frozen=True)
class Standardiser:
    """Affine maps between physical units and the map's unitless ones.

    ``v = (V_mV - v_mean_mV) / v_sd_mV`` and ``i = I_pA / i_sd_pA``; RBF widths are
    meaningless in mV, so every distance is measured in standardised units.
    """

    v_mean_mV: float
    v_sd_mV: float
    i_sd_pA: float

    @classmethod
    def for_training(cls, train: TrainingData) -> "Standardiser":
        """The standardiser of a training set (all stimuli, all repetitions, the training windows)."""
        v = np.concatenate([np.ravel(s.voltage_mV) for s in train.stimuli])
        i = np.concatenate([np.ravel(s.window_current_pA) for s in train.stimuli])
        return cls(float(v.mean()), float(v.std()) or 1.0, float(i.std()) or 1.0)

    def v(self, voltage_mV: np.ndarray) -> np.ndarray:
        return (np.asarray(voltage_mV, dtype=np.float64) - self.v_mean_mV) / self.v_sd_mV

    def v_mV(self, v: np.ndarray) -> np.ndarray:
        return np.asarray(v) * self.v_sd_mV + self.v_mean_mV

    def i(self, current_pA: np.ndarray) -> np.ndarray:
        return np.asarray(current_pA, dtype=np.float64) / self.i_sd_pA


def decay_factors(dt_s: float, taus_ms: tuple[float, ...]) -> np.ndarray:
    """``exp(-dt / tau_j)`` for a step ``dt_s`` (s) and time constants ``taus_ms`` (ms), by the portable ``exp``
    (NumPy's rounds differently on CPUs with AVX-512), as :func:`qsnmc.lowpass`."""
    return portable_exp(np.array([-dt_s / (t * 1e-3) for t in taus_ms], dtype=np.float64))


def slow_filters(v: np.ndarray, dt_s: float, taus_ms: tuple[float, ...]) -> np.ndarray:
    """:func:`qsnmc.lowpass` of a series (started at steady state) for each time constant (ms), one column
    each: ``(n_samples, k)``."""
    return lowpass_bank(v, dt_s, [t * 1e-3 for t in taus_ms]).T


@dataclass
class RBFLayer:
    """Gaussian radial basis functions ``exp(-||z - c_q||^2 / (2 sigma_q^2))``."""

    centres: np.ndarray  #: ``(n_centres, n_inputs)`` in standardised units.
    widths: np.ndarray  #: ``sigma_q``, shape ``(n_centres,)``.
    _gain: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.centres = np.ascontiguousarray(self.centres, dtype=np.float64)
        self.widths = np.asarray(self.widths, dtype=np.float64)
        self._gain = 1.0 / (2.0 * self.widths**2)

    @property
    def n_centres(self) -> int:
        return int(self.centres.shape[0])

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Activations ``(n_points, n_centres)`` of inputs ``z`` ``(n_points, n_inputs)``.

        Squared distances are summed coordinate by coordinate (no BLAS product, whose rounding
        depends on the kernel: see :mod:`ridge`); ``exp`` is the portable one (see :func:`qsnmc.portable_exp`).
        """
        d2 = np.zeros((z.shape[0], self.n_centres))
        for k in range(z.shape[1]):
            diff = z[:, k, None] - self.centres[None, :, k]
            d2 += diff * diff
        d2 *= -self._gain
        return portable_exp(d2, out=d2)


def rbf_inputs(v: np.ndarray, slow: np.ndarray, rows: np.ndarray, config: EmbeddingConfig) -> np.ndarray:
    """RBF input ``z(n)`` for the sample indices ``rows`` (each ``>= config.span``)."""
    cols = [v[rows - lag] for lag in config.lags()]
    if config.slow_gain > 0:
        cols += [config.slow_gain * slow[rows - config.input_lag, j] for j in range(slow.shape[1])]
    return np.stack(cols, axis=1)


def linear_inputs(v: np.ndarray, drive: np.ndarray, slow: np.ndarray, rows: np.ndarray,
                  config: EmbeddingConfig) -> np.ndarray:
    """Linear inputs ``[1, i(n), i(n+1), s_1(n), ..., (delays)]`` for the sample indices ``rows``."""
    cols = [np.ones(rows.size), drive[rows], slow[rows - config.input_lag]]
    if config.linear_state:
        cols += [v[rows - lag] for lag in config.lags()]
    return np.column_stack(cols)
