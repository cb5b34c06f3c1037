"""torch's CPU kernels fixed in every worker: the recurrent entries predict the same spikes whatever
ATen's CPU capability the machine or the user would pick (real CLI runs, real short fits)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

CAPABILITIES = ("default", "avx2", None)  # None: the machine's own (AVX512 where the CPU has it)


def _predictions(run: Path, model: str) -> dict[str, np.ndarray]:
    with np.load(run / model / "prediction.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.slow
def test_the_recurrent_entries_predict_the_same_spikes_under_every_aten_capability(tmp_path, data_dir):
    runs = {}
    for cap in CAPABILITIES:
        env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
        if cap is not None:
            env["ATEN_CPU_CAPABILITY"] = cap
        runs_dir = tmp_path / f"runs-{cap or 'own'}"
        out = run_cli(["run", "gru", "dendplrnn", "--challenge", "synthetic-test", "--budget", "0.01", "--no-cache",
                       "--jobs", "2", "--quiet", "--runs-dir", str(runs_dir)], cwd=tmp_path, data_dir=data_dir,
                      env=env, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        (run,) = [p for p in runs_dir.iterdir() if p.is_dir() and p.name != "cache"]
        runs[cap] = run
    for model in ("gru", "dendplrnn"):
        record = json.loads((runs[None] / model / "record.json").read_text())
        assert record["numerics"]["torch"]["cpu_capability"] == "DEFAULT"
        assert record["numerics"]["torch"]["mkldnn_enabled"] is False
        assert record["numerics"]["environment"]["MKL_CBWR"] == "COMPATIBLE"
        reference = _predictions(runs[None], model)
        assert sum(t.size for t in reference.values()) > 0, f"{model} predicted no spike: nothing compared"
        for cap in CAPABILITIES[:-1]:
            other = _predictions(runs[cap], model)
            assert other.keys() == reference.keys()
            assert all(np.array_equal(other[k], reference[k]) for k in reference), (model, cap)


def _kernels_in_subprocess(prelude: str) -> dict:
    code = (f"{prelude}\nimport json\nfrom qsnmc import portable_torch_numerics\n"
            "print(json.dumps(portable_torch_numerics()))")
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_portable_kernels_are_fixed_before_torchs_first_operation_and_reported_when_too_late():
    fresh = _kernels_in_subprocess("import torch")
    assert fresh == {"cpu_capability": "DEFAULT", "mkl_cbwr": "COMPATIBLE", "mkldnn": False, "portable": True}
    late = _kernels_in_subprocess("import torch\ntorch.sigmoid(torch.zeros(3))")
    if late["cpu_capability"] != "DEFAULT":  # a CPU without vector kernels starts at DEFAULT anyway
        assert late["portable"] is False
