"""What the portable torch kernels cost, and whether the recurrent entries' predictions move with the CPU's
code paths.

1. Cost: the gru and the dendPLRNN fitted at ``--budget`` on the embedded challenge in fresh
   processes, with torch's own kernels for this CPU (``ATEN_CPU_CAPABILITY`` left to torch, MKL's
   automatic code path, oneDNN on) and with the portable ones (:func:`qsnmc.portable_torch_numerics`),
   taking turns (``--rounds``), so that a busy machine slows both alike. Fit wall time per setting.
2. Identity: the same fits under several CPU code paths that the worker does not fix: OpenBLAS's
   kernel (NumPy's matrix products; ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset together
   lets OpenBLAS pick its own) and NumPy's dispatched SIMD paths (``NPY_DISABLE_CPU_FEATURES``),
   each with ATen's AVX2 and baseline capabilities asked for from outside; sha256 of the
   predicted spike times per variant (the same hash: the same prediction).

Writes ``benchmarks/results/torch_numerics.json``.

Usage::

    python benchmarks/bench_torch_numerics.py [--budget 0.1] [--rounds 2] [--skip-cost]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: one fit in a fresh process: prints fit seconds, kernels and the prediction's sha256 as JSON
FIT = """
import hashlib, json, sys, time
import numpy as np
native = sys.argv[3] == "native"
if not native:
    from qsnmc import portable_torch_numerics
    portable_torch_numerics()
else:
    import qsnmc_plugins.hazard.torch_setup as ts
    import torch
    ts.portable_torch_numerics = lambda: {"cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
                                          "portable": False}
from qsnmc import load_challenge
from qsnmc_plugins.gru.model import GRUModel
from qsnmc_plugins.dendplrnn.model import DendPLRNNModel
ch = load_challenge(sys.argv[4])
model = {"gru": GRUModel, "dendplrnn": DendPLRNNModel}[sys.argv[1]](seed=0, budget=float(sys.argv[2]))
t0 = time.perf_counter()
rec = model.fit(ch.training_data())
fit_s = time.perf_counter() - t0
spikes = np.concatenate([model.predict(st) for st in ch.test_stimuli()])
print(json.dumps({"fit_s": fit_s, "kernels": rec["details"]["torch_kernels"],
                  "sha256": hashlib.sha256(spikes.tobytes()).hexdigest()[:16], "n_spikes": int(spikes.size)}))
"""

#: code-path variants of the identity check: environment changes on top of this machine's
VARIANTS = {
    "machine": {},
    "aten avx2 asked": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten default asked": {"ATEN_CPU_CAPABILITY": "default"},
    "openblas own kernel": {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None},
    "numpy without avx512": {"NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL "
                                                         "AVX512_ICL AVX512_SPR"},
}


def fit_in_subprocess(model: str, budget: float, kernels: str, challenge: Path, env_change: dict) -> dict:
    env = dict(os.environ)
    for k, v in env_change.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    out = subprocess.run([sys.executable, "-c", FIT, model, str(budget), kernels, str(challenge)], env=env,
                         capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--identity-budget", type=float, default=0.02)
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--challenge", type=Path, default=ROOT / "reference_data" / "embedded")
    args = ap.parse_args()
    result: dict = {"budget": args.budget, "identity_budget": args.identity_budget, "cost": {}, "identity": {}}
    for model in ("gru", "dendplrnn"):
        if not args.skip_cost:
            times: dict[str, list[float]] = {"native": [], "portable": []}
            for _ in range(args.rounds):
                for kernels in ("native", "portable"):
                    r = fit_in_subprocess(model, args.budget, kernels, args.challenge, {})
                    times[kernels].append(r["fit_s"])
                    result["cost"].setdefault(model, {})[f"{kernels} kernels"] = r["kernels"]
            result["cost"][model].update({k: v for k, v in times.items()})
            print(model, {k: [round(t, 1) for t in v] for k, v in times.items()}, flush=True)
        for name, change in VARIANTS.items():
            r = fit_in_subprocess(model, args.identity_budget, "portable", args.challenge, change)
            result["identity"].setdefault(model, {})[name] = r
            print(model, name, r["sha256"], r["n_spikes"], r["kernels"]["cpu_capability"], flush=True)
    out = ROOT / "benchmarks" / "results" / "torch_numerics.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
