"""The network: a one-layer GRU (:mod:`fast_gru`), LSTM or dendPLRNN, or a non-recurrent control (causal filters
and a pointwise nonlinearity), with a linear readout of the spike log-odds per bin, and the
hazard of an ensemble of them over a window."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from qsnmc_plugins.gru.batching import prediction_chunks
from qsnmc_plugins.gru.fast_gru import FastGRU
from qsnmc_plugins.hazard.targets import base_rate_logit

CELLS = ("gru", "lstm", "ln", "dendplrnn")
#: dendritic bases of the dendPLRNN cell (as the dendplrnn entry's members)
DENDPLRNN_BASES = 8
#: the control's filter length (bins): shorter than the 200-bin burn-in, so every bin in the loss
#: sees its whole filter
LN_FILTER_BINS = 128
#: the control's linear filters of the inputs
LN_FILTERS = 16


class LinearNonlinear(nn.Module):
    """A non-recurrent control with the recurrent cells' interface, (B, T, n_in) -> (B, T, hidden):
    :data:`LN_FILTERS` learned causal filters of :data:`LN_FILTER_BINS` bins over the inputs,
    then a pointwise two-layer nonlinearity (a multi-filter linear-nonlinear model, as a GLM
    without spike history).

    Its output at bin t depends on inputs of the last 128 bins only: no state carries memory,
    so whatever it predicts from longer ago comes from the slow filtrates among its inputs.
    """

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.filters = nn.Conv1d(n_in, LN_FILTERS, LN_FILTER_BINS)
        self.nonlinearity = nn.Sequential(nn.Linear(LN_FILTERS, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                          nn.GELU())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        padded = nn.functional.pad(x.transpose(1, 2), (LN_FILTER_BINS - 1, 0))  # left padding: causal
        return self.nonlinearity(self.filters(padded).transpose(1, 2)), None


class DendPLRNNCell(nn.Module):
    """The dendPLRNN (Brenner et al. 2022; :mod:`qsnmc_plugins.dendplrnn.network`) as a recurrent
    layer, (B, T, n_in) -> (B, T, hidden): its ``hidden`` latent states from a zero state, run
    freely on the inputs (:func:`~qsnmc_plugins.dendplrnn.fast_rollout.fast_rollout`'s
    hand-written backward pass). :meth:`project` keeps it bounded after each optimiser step."""

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        from qsnmc_plugins.dendplrnn.network import DendPLRNN

        g = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ()).item()))  # from the global seed
        self.net = DendPLRNN(hidden, DENDPLRNN_BASES, n_in=n_in, generator=g)
        for p in (self.net.hazard_w, self.net.hazard_b):  # the spike readout is the SpikeHazardNet's
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor, voltage: torch.Tensor | None = None,
                forcing: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        """States (B, T, hidden) before forcing; unit 0 is the voltage's. Where ``forcing[t]``, unit 0
        of the state is replaced by ``voltage[:, t]`` (B, T) after step t (sparse teacher forcing)."""
        from qsnmc_plugins.dendplrnn.fast_rollout import fast_rollout

        z0 = torch.zeros(x.shape[0], self.net.m, dtype=x.dtype, device=x.device)
        obs = None if voltage is None else voltage.unsqueeze(-1)
        return fast_rollout(self.net, z0, x, obs, forcing), None

    def project(self) -> None:
        self.net.project()


class SpikeHazardNet(nn.Module):
    """Inputs (B, T, n_in) -> spike log-odds per bin (B, T); sigmoid gives the hazard."""

    def __init__(self, n_in: int, hidden: int, cell: str = "gru", base_rate: float = 0.01,
                 voltage_head: bool = False) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        if cell == "ln":
            self.rnn = LinearNonlinear(n_in, hidden)
        elif cell == "dendplrnn":
            self.rnn = DendPLRNNCell(n_in, hidden)
        elif cell == "gru":
            self.rnn = FastGRU(n_in, hidden)  # nn.GRU's parameters and outputs, a faster backward pass
        else:
            self.rnn = nn.LSTM(n_in, hidden, batch_first=True)
        self.spike = nn.Linear(hidden, 1)
        #: the voltage auxiliary's readout: the dendPLRNN's unit 0 (its observed unit), else linear
        self.voltage = nn.Linear(hidden, 1) if voltage_head and cell != "dendplrnn" else None
        with torch.no_grad():  # start at the mean spike probability per bin
            self.spike.bias.fill_(base_rate_logit(base_rate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return self.spike(h)[..., 0]

    def forward_with_voltage(self, x: torch.Tensor, voltage: torch.Tensor | None = None,
                             forcing: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Spike log-odds (B, T) and the predicted standardised voltage (B, T); with ``forcing``
        (dendPLRNN cell only), the recorded ``voltage`` (B, T) is forced into the state where it is True."""
        if isinstance(self.rnn, DendPLRNNCell):
            h, _ = self.rnn(x, voltage, forcing)
            return self.spike(h)[..., 0], h[..., 0]
        if forcing is not None:
            raise ValueError("teacher forcing needs the dendPLRNN cell")
        if self.voltage is None:
            raise ValueError("this network has no voltage readout (built without voltage_head)")
        h, _ = self.rnn(x)
        return self.spike(h)[..., 0], self.voltage(h)[..., 0]

    def project(self) -> None:
        """The cell's constraint after an optimiser step (the dendPLRNN's |A| < 1; others have none)."""
        if hasattr(self.rnn, "project"):
            self.rnn.project()


def ensemble_hazard(nets: list[SpikeHazardNet], inputs: np.ndarray, start: int, stop: int, seq_bins: int,
                    burn_bins: int, device: torch.device) -> np.ndarray:
    """Mean hazard (spike probability per bin) of the networks over bins ``[start, stop)`` of one
    stimulus' inputs (combined before spike detection), computed in chunks of ``seq_bins`` each with
    its own ``burn_bins`` burn-in, as in training."""
    chunks, _ = prediction_chunks(inputs, start, stop, seq_bins, burn_bins)
    hazards = []
    with torch.no_grad():
        for net in nets:
            logits = net(torch.from_numpy(chunks).to(device))[:, burn_bins:]
            hazards.append(torch.sigmoid(logits).double().cpu().numpy().reshape(-1)[: stop - start])
    return np.mean(hazards, axis=0)
