"""torch's CPU kernels fixed to ones whose rounding does not depend on the CPU.

On a CPU, torch rounds differently with the vector width it dispatches to (ATen's CPU
capability: ``DEFAULT``, ``AVX2``, ``AVX512``) and with the code path its BLAS (MKL) picks, and
a recurrent network's training turns a last-bit difference into another fit. Here both are
fixed: ATen's baseline kernels (``ATEN_CPU_CAPABILITY=default``, compiled for any x86-64 CPU),
MKL's conditional numerical reproducibility in its ``COMPATIBLE`` mode (one code path on every
x86-64 CPU, at a fixed thread count), and oneDNN off (its kernels are generated for the CPU
they run on, whatever ATen's capability). The cost is fit time (``benchmarks/README.md``,
"RNN numerics"). Results on a GPU are not covered: CUDA kernels round differently again.

Both variables are read once, when torch first dispatches a kernel and when MKL first
starts; the harness's worker sets them before it imports any plugin. A process that already
ran torch keeps the kernels it started with: :func:`portable_torch_numerics` says whether the
fixed ones are in use.
"""
from __future__ import annotations

import os
import sys

#: environment that fixes torch's CPU kernels (set before torch's first operation)
PORTABLE_TORCH_ENVIRONMENT = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
#: ATen's name of the fixed capability, as ``torch.backends.cpu.get_cpu_capability()`` reports it
PORTABLE_CAPABILITY = "DEFAULT"


def set_portable_torch_environment() -> None:
    """Set :data:`PORTABLE_TORCH_ENVIRONMENT` in this process's environment (overriding what was
    there); effective for torch's kernels only if torch has not run an operation yet."""
    os.environ.update(PORTABLE_TORCH_ENVIRONMENT)


def portable_torch_numerics() -> dict[str, object]:
    """Fix torch's CPU numerics for this process where that is still possible, and say what is in use.

    Sets the environment (:func:`set_portable_torch_environment`) and turns oneDNN off. Returns
    ``{"cpu_capability": ..., "mkl_cbwr": ..., "mkldnn": ..., "portable": bool}``: ``portable`` is
    False where torch had already started with another capability (an earlier fit in the same
    process), or where MKL's mode was changed by hand.
    """
    set_portable_torch_environment()
    import torch

    torch.backends.mkldnn.enabled = False
    return torch_kernels()


def torch_kernels() -> dict[str, object]:
    """torch's CPU kernels in this process (its capability starts here if no operation ran yet)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    capability = str(torch.backends.cpu.get_cpu_capability())
    cbwr = os.environ.get("MKL_CBWR", "")
    mkldnn = bool(torch.backends.mkldnn.enabled)
    return {"cpu_capability": capability, "mkl_cbwr": cbwr, "mkldnn": mkldnn,
            "portable": capability == PORTABLE_CAPABILITY and cbwr == PORTABLE_TORCH_ENVIRONMENT["MKL_CBWR"]
            and not mkldnn}
