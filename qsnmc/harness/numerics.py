"""What decides a process's floating-point results: BLAS, NumPy's CPU code paths, torch, Brian2.

:func:`numerics_info` is recorded in ``run.json`` (the scoring process) and in each model's
record (its worker, collected after fit and prediction), so that two tables can be told
apart by the numerics they ran with. It never imports torch or Brian2: their settings are
read only when the model imported them.
"""
from __future__ import annotations

import os
import sys
from typing import Any

#: environment variables that change which kernels and how many threads numeric libraries use
NUMERIC_VARIABLES = ("ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES",
                     "NPY_ENABLE_CPU_FEATURES", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
                     "NUMEXPR_NUM_THREADS")


def blas_info() -> list[dict[str, Any]]:
    """The BLAS / OpenMP libraries loaded in this process: library, version, kernel (``architecture``),
    threads and threading layer, from threadpoolctl; without it, NumPy's build-time BLAS."""
    import numpy as np  # noqa: F401 - loads NumPy's BLAS, so that it is listed

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return _numpy_build_blas()
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{**{k: lib.get(k) for k in keep if k in lib}, "library": os.path.basename(str(lib.get("filepath", "")))}
            for lib in threadpool_info()]


def _numpy_build_blas() -> list[dict[str, Any]]:
    """NumPy's BLAS and LAPACK as built (``np.show_config``'s data), when threadpoolctl is missing."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
    except TypeError:  # NumPy < 1.26 prints instead
        return []
    deps = (config or {}).get("Build Dependencies", {})
    return [{"user_api": api, "internal_api": str(d.get("name")), "version": str(d.get("version")),
             "source": "numpy build"} for api, d in deps.items() if isinstance(d, dict)]


def numpy_cpu_features() -> dict[str, Any]:
    """NumPy's SIMD code paths: the baseline it was built for and the dispatched ones this CPU
    runs (those the CPU has, minus ``NPY_DISABLE_CPU_FEATURES``)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    enabled = {k for k, v in getattr(umath, "__cpu_features__", {}).items() if v}
    dispatch = list(getattr(umath, "__cpu_dispatch__", []))
    return {"baseline": list(getattr(umath, "__cpu_baseline__", [])),
            "dispatched": [f for f in dispatch if f in enabled]}


def torch_info() -> dict[str, Any] | None:
    """torch's version, threads and determinism flags, if this process imported torch (else None)."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "are_deterministic_algorithms_enabled"):
        return None
    return {"version": str(torch.__version__),
            "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
            "deterministic_warn_only": bool(torch.is_deterministic_algorithms_warn_only_enabled()),
            "num_threads": int(torch.get_num_threads()),
            "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
            "mkldnn_enabled": bool(torch.backends.mkldnn.enabled)}


def brian2_info() -> dict[str, Any] | None:
    """Brian2's version and C++ compile flags, if this process imported Brian2 (else None)."""
    brian2 = sys.modules.get("brian2")
    if brian2 is None or not hasattr(brian2, "prefs"):
        return None
    prefs = brian2.prefs
    return {"version": str(getattr(brian2, "__version__", "")),
            "extra_compile_args_gcc": list(prefs["codegen.cpp.extra_compile_args_gcc"]),
            "codegen_target": str(prefs["codegen.target"])}


def numerics_info() -> dict[str, Any]:
    """This process's numerics: BLAS libraries and kernels, NumPy's CPU code paths, the environment
    variables that steer them, and torch's and Brian2's settings where they were imported."""
    import numpy as np

    info: dict[str, Any] = {
        "numpy": np.__version__,
        "blas": blas_info(),
        "numpy_cpu_features": numpy_cpu_features(),
        "environment": {k: os.environ[k] for k in NUMERIC_VARIABLES if k in os.environ},
    }
    for name, part in (("torch", torch_info()), ("brian2", brian2_info())):
        if part is not None:
            info[name] = part
    return info
