"""Fast inference with a trained network, in numpy (no autograd, no torch needed).

A free run over tens of thousands of 1-ms steps is dominated by per-step overhead,
which is several times lower for numpy on these tiny arrays than for torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: |z| above this in a free run means the network has diverged
DIVERGENCE_LIMIT = 1e4


class FreeRunDiverged(RuntimeError):
    """A free run left the bounded region (non-finite or huge latent state)."""


@dataclass(frozen=True)
class NetworkParams:
    """A trained network's parameters as float64 arrays (see :mod:`network`)."""

    A: np.ndarray  #: (m,) diagonal
    W: np.ndarray  #: (m, m) with zero diagonal
    h0: np.ndarray  #: (m,)
    C: np.ndarray  #: (m, n_in)
    alpha: np.ndarray  #: (B,)
    thresholds: np.ndarray  #: (B, m)
    n_obs: int
    hazard_w: np.ndarray | None = None  #: (m,) spike-hazard readout weights (None: no hazard readout)
    hazard_b: float = 0.0  #: its bias (logit)

    @classmethod
    def from_module(cls, net) -> "NetworkParams":
        g = lambda p: p.detach().cpu().double().numpy().copy()  # noqa: E731
        W = g(net.W) * (1.0 - np.eye(net.m))
        hw = g(net.hazard_w) if hasattr(net, "hazard_w") else None
        hb = float(net.hazard_b.detach().cpu()) if hasattr(net, "hazard_b") else 0.0
        return cls(g(net.A), W, g(net.h0), g(net.C), g(net.alpha), g(net.thresholds), int(net.n_obs), hw, hb)

    def as_record(self) -> dict:
        return {k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_record(cls, rec: dict) -> "NetworkParams":
        conv = {"n_obs": int, "hazard_b": float}
        return cls(**{k: (conv[k](v) if k in conv else None if v is None else np.asarray(v, np.float64))
                      for k, v in rec.items()})


def _states(p: NetworkParams, inputs: np.ndarray, observations: np.ndarray | None,
            forcing: np.ndarray | None) -> np.ndarray:
    """Latent states (T, m) before forcing."""
    T = inputs.shape[0]
    m, k = p.A.shape[0], p.n_obs
    drive = inputs @ p.C.T + p.h0
    z = np.zeros(m)
    if observations is not None:
        z[:k] = observations[0]
    states = np.empty((T, m))
    states[0] = z
    A, WT, alpha, th = p.A, p.W.T, p.alpha, p.thresholds
    for t in range(1, T):
        phi = alpha @ (np.maximum(z - th, 0.0) - np.maximum(z, 0.0))
        z = A * z + phi @ WT + drive[t]
        states[t] = z
        if forcing is not None and forcing[t]:
            z[:k] = observations[t]
        if t % 256 == 0 and not (np.all(np.isfinite(z)) and np.abs(z).max() < DIVERGENCE_LIMIT):
            raise FreeRunDiverged(f"latent state diverged at step {t} (max |z| = {np.abs(z).max():.3g})")
    if not (np.all(np.isfinite(states)) and np.abs(states).max() < DIVERGENCE_LIMIT):
        raise FreeRunDiverged(f"latent state diverged by step {T}")
    return states


def free_run(p: NetworkParams, inputs: np.ndarray, observations: np.ndarray | None = None,
             forcing: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run the network (batch-free) over ``inputs`` (T, n_in): (standardised voltage (T,), spike
    probability per step (T,)).

    Step 0 starts from zeros, the observed units at ``observations[0]`` when given. Where
    ``forcing[t]`` is True, the observed units are set to ``observations[t]`` after step t's state
    is recorded: the voltage and hazard are read from the state before forcing (as in training).
    Requires ``p.hazard_w``.

    Raises:
        FreeRunDiverged: when the state becomes non-finite or exceeds DIVERGENCE_LIMIT.
    """
    if p.hazard_w is None:
        raise ValueError("these parameters have no hazard readout")
    states = _states(p, inputs, observations, forcing)
    logits = states @ p.hazard_w + p.hazard_b
    return states[:, 0].copy(), 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
