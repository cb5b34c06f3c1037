"""The driven, clipped dendritic PLRNN (torch), with a voltage and a spike-hazard readout.

    z_t = A z_{t-1} + W phi(z_{t-1}) + h_0 + C s_t
    phi(z) = sum_b alpha_b [max(0, z - h_b) - max(0, z)]     (clipped dendritic basis)
    P(spike in step t) = sigmoid(w_h . z_t + b_h)             (Bernoulli hazard per step)

A is diagonal, W has a zero diagonal, s_t the standardised injected current. The
observed voltage is the first ``n_obs`` latent units (identity observation), so
teacher forcing writes the recording straight into the state. The clipped basis is
bounded, and A is kept inside (-1, 1) after each optimiser step, so free runs of any
length stay bounded (Brenner et al. 2022, section 3.2). The hazard is a GLM on the latent
state, the spike channel of a multimodal PLRNN (Kramer et al. 2022, ICML).
"""
from __future__ import annotations

import torch
from torch import nn

from qsnmc_plugins.hazard.targets import base_rate_logit

#: |A_ii| is projected below this after each optimiser step (bounded orbits)
A_MAX = 0.999


class DendPLRNN(nn.Module):
    """Latent dimension ``m``, ``n_bases`` dendritic bases, ``n_obs`` observed units, ``n_in`` inputs."""

    def __init__(self, m: int, n_bases: int, n_obs: int = 1, n_in: int = 1, generator: torch.Generator | None = None,
                 base_rate: float = 0.01):
        super().__init__()
        if not 1 <= n_obs <= m:
            raise ValueError(f"need 1 <= n_obs <= m, got n_obs={n_obs}, m={m}")
        g = generator
        self.m, self.n_bases, self.n_obs, self.n_in = m, n_bases, n_obs, n_in
        self.A = nn.Parameter(torch.full((m,), 0.9))
        self.W = nn.Parameter(torch.randn(m, m, generator=g) * (0.5 / m**0.5))
        self.h0 = nn.Parameter(torch.zeros(m))
        self.C = nn.Parameter(torch.randn(m, n_in, generator=g) * 0.1)
        self.alpha = nn.Parameter(torch.rand(n_bases, generator=g) / n_bases)
        self.thresholds = nn.Parameter(torch.randn(n_bases, m, generator=g))
        self.hazard_w = nn.Parameter(torch.zeros(m))
        self.hazard_b = nn.Parameter(torch.tensor(base_rate_logit(base_rate)))  #: starts at the base rate
        self.register_buffer("offdiag", 1.0 - torch.eye(m))

    def hazard_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Logit of the spike probability per step, from latent states (..., m) -> (...)."""
        return states @ self.hazard_w + self.hazard_b

    def basis(self, z: torch.Tensor) -> torch.Tensor:
        """phi(z), shape like ``z`` (batch, m)."""
        zb = z.unsqueeze(-2)  # (batch, 1, m)
        clipped = torch.relu(zb - self.thresholds) - torch.relu(zb)  # (batch, B, m)
        return torch.einsum("b,...bm->...m", self.alpha, clipped)

    def step(self, z: torch.Tensor, drive: torch.Tensor, W_off: torch.Tensor) -> torch.Tensor:
        """One step; ``drive`` = h_0 + C s_t precomputed, ``W_off`` = W with zero diagonal."""
        return self.A * z + self.basis(z) @ W_off.T + drive

    def drives(self, inputs: torch.Tensor) -> torch.Tensor:
        """h_0 + C s_t for inputs of shape (batch, T, n_in) -> (batch, T, m)."""
        return inputs @ self.C.T + self.h0

    @torch.no_grad()
    def project(self) -> None:
        """Keep |A_ii| < A_MAX (call after each optimiser step)."""
        self.A.clamp_(-A_MAX, A_MAX)

    def rollout(self, z0: torch.Tensor, inputs: torch.Tensor, observations: torch.Tensor | None = None,
                forcing: torch.Tensor | None = None) -> torch.Tensor:
        """Run the network over ``inputs`` (batch, T, n_in) from state ``z0`` (batch, m).

        Step t (1 <= t < T) maps z_{t-1} to z_t with input s_t. Where ``forcing[t]`` is
        True (t = 0 included) the observed units of z_t are replaced by ``observations[:, t]``
        *after* the prediction for step t has been recorded (sparse teacher forcing). Plain autograd:
        training uses :func:`qsnmc_plugins.dendplrnn.fast_rollout.fast_rollout`, which returns
        the same predictions with a hand-written backward pass.

        Returns:
            the predicted observations, (batch, T, n_obs); entry 0 is ``z0``'s.
        """
        T = inputs.shape[1]
        drive = self.drives(inputs)
        W_off = self.W * self.offdiag
        k = self.n_obs
        z = z0
        preds = [z[:, :k]]
        if forcing is not None and bool(forcing[0]):
            z = torch.cat([observations[:, 0], z[:, k:]], dim=1)
        for t in range(1, T):
            z = self.step(z, drive[:, t], W_off)
            preds.append(z[:, :k])
            if forcing is not None and bool(forcing[t]):
                z = torch.cat([observations[:, t], z[:, k:]], dim=1)
        return torch.stack(preds, dim=1)
