"""Hazard of one network or of an ensemble (the mean of its members' hazards) over a window."""
from __future__ import annotations

import numpy as np
import torch

from qsnmc_plugins.gru.batching import prediction_chunks
from qsnmc_plugins.gru.network import SpikeHazardNet


def network_hazard(net: SpikeHazardNet, inputs: np.ndarray, start: int, stop: int, seq_bins: int,
                   burn_bins: int, device: torch.device) -> np.ndarray:
    """Hazard (spike probability per bin) over bins ``[start, stop)`` of one stimulus' inputs,
    computed in chunks of ``seq_bins`` each with its own ``burn_bins`` burn-in, as in training."""
    chunks, _ = prediction_chunks(inputs, start, stop, seq_bins, burn_bins)
    with torch.no_grad():
        logits = net(torch.from_numpy(chunks).to(device))[:, burn_bins:]
        h = torch.sigmoid(logits).double().cpu().numpy().reshape(-1)
    return h[: stop - start]


def ensemble_hazard(nets: list[SpikeHazardNet], inputs: np.ndarray, start: int, stop: int, seq_bins: int,
                    burn_bins: int, device: torch.device) -> np.ndarray:
    """Mean hazard of the networks (combined before spike detection)."""
    return np.mean([network_hazard(n, inputs, start, stop, seq_bins, burn_bins, device) for n in nets], axis=0)
