"""The network: a one-layer GRU or LSTM, or a non-recurrent control (causal filters and a
pointwise nonlinearity), with a linear readout of the spike log-odds per bin, and the hazard of
an ensemble of them over a window."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from qsnmc_plugins.gru.batching import prediction_chunks

CELLS = ("gru", "lstm", "ln")
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


class SpikeHazardNet(nn.Module):
    """Inputs (B, T, n_in) -> spike log-odds per bin (B, T); sigmoid gives the hazard."""

    def __init__(self, n_in: int, hidden: int, cell: str = "gru", base_rate: float = 0.01) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        if cell == "ln":
            self.rnn = LinearNonlinear(n_in, hidden)
        else:
            self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(n_in, hidden, batch_first=True)
        self.spike = nn.Linear(hidden, 1)
        with torch.no_grad():  # start at the mean spike probability per bin
            p = min(max(base_rate, 1e-4), 0.5)
            self.spike.bias.fill_(math.log(p / (1 - p)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)
        return self.spike(h)[..., 0]


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
