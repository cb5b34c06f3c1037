"""The numerics record: BLAS, NumPy's CPU code paths, the steering environment variables, and torch's
and Brian2's settings only where the process imported them (checked in fresh subprocesses)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qsnmc.harness.numerics import numerics_info


def _info_in_subprocess(prelude: str = "", env: dict | None = None) -> dict:
    code = f"{prelude}\nimport json\nfrom qsnmc.harness.numerics import numerics_info\nprint(json.dumps(numerics_info()))"
    full_env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    full_env.update(env or {})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_blas_and_numpy_code_paths_are_recorded():
    import numpy as np

    info = numerics_info()
    json.dumps(info)  # JSON as it is
    assert info["numpy"] == np.__version__
    assert info["blas"] and all({"internal_api", "version", "num_threads"} <= set(lib) for lib in info["blas"])
    features = info["numpy_cpu_features"]
    assert features["baseline"] and isinstance(features["dispatched"], list)


def test_torch_and_brian2_are_left_out_where_not_imported():
    bare = _info_in_subprocess(env={"OMP_NUM_THREADS": "1"})
    assert "torch" not in bare and "brian2" not in bare
    assert bare["environment"]["OMP_NUM_THREADS"] == "1"


@pytest.mark.slow
def test_torch_and_brian2_settings_are_recorded_where_imported():
    loaded = _info_in_subprocess("import torch, brian2\ntorch.use_deterministic_algorithms(True)")
    assert loaded["torch"]["deterministic_algorithms"] is True and loaded["torch"]["version"]
    assert isinstance(loaded["brian2"]["extra_compile_args_gcc"], list) and loaded["brian2"]["version"]


def test_disabled_numpy_cpu_features_leave_the_dispatched_list():
    enabled = numerics_info()["numpy_cpu_features"]["dispatched"]
    if "AVX2" not in enabled:
        pytest.skip("this CPU has no AVX2 to disable")
    without = [f for f in enabled if f.startswith("AVX512")] + ["AVX2", "FMA3"]
    off = _info_in_subprocess(env={"NPY_DISABLE_CPU_FEATURES": " ".join(without)})
    assert off["environment"]["NPY_DISABLE_CPU_FEATURES"] == " ".join(without)
    assert not set(without) & set(off["numpy_cpu_features"]["dispatched"])
    assert set(off["numpy_cpu_features"]["dispatched"]) < set(enabled)
