"""Torch set up for a deterministic fit: seeded, deterministic kernels, one thread."""
from __future__ import annotations


def configure_torch(seed: int):
    """Seed torch from the model's ``seed``, make its kernels deterministic (cuBLAS too, on a GPU)
    and single-threaded (small recurrent steps: extra threads only add overhead); return the device."""
    import os

    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
