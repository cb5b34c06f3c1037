"""Torch set up for a deterministic fit: portable kernels, seeded, deterministic algorithms, one thread."""
from __future__ import annotations

from qsnmc import portable_torch_numerics


def configure_torch(seed: int):
    """Fix torch's CPU kernels to ones that round alike on any x86-64 CPU
    (:func:`qsnmc.portable_torch_numerics`), seed torch from the model's ``seed``, make its
    algorithms deterministic (cuBLAS too, on a GPU) and single-threaded (small recurrent steps:
    extra threads only add overhead, and MKL's results depend on the thread count); return the
    device and the kernels in use (for the fit record)."""
    import os

    import torch

    kernels = portable_torch_numerics()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu"), kernels
