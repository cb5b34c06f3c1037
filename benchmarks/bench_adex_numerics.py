"""The AdEx's Brian2 compile flags: speed, and whether the simulated spikes depend on the CPU code path.

For each flag set (Brian2's default ``-O3 -ffast-math -march=native``, the plugin's
``COMPILE_ARGS``, and the plugin's with ``-ffast-math``), in a fresh process with its own
extension cache: one search-like Brian2 run (``--candidates`` AdEx neurons of random
parameters around a cell, ``--columns`` current columns of ``--seconds`` s each at the
model's 0.2 ms step), timed (CPU seconds, best of ``--repeats`` after a compiling warm-up),
and a hash of every neuron's spike times (the flags change the values: a hash that differs
between two flag sets is what a CPU-dependent flag does between two machines). Writes
``results/adex_numerics.json``.

Run: ``python benchmarks/bench_adex_numerics.py [--candidates 100 --columns 10 --seconds 4]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
FLAG_SETS = {
    "brian2_default": ["-w", "-O3", "-ffast-math", "-fno-finite-math-only", "-march=native", "-std=c++11"],
    "plugin": None,  # qsnmc_plugins.adex.brian_setup.COMPILE_ARGS
    "plugin_fast_math": "+-ffast-math",
}

_CHILD = """
import hashlib, json, sys, time
import numpy as np
from qsnmc_plugins.adex import brian_setup
from qsnmc_plugins.adex.parameters import AdExParameters
from qsnmc_plugins.adex.simulate import simulate_stimuli_segmented
from scipy.signal import lfilter
flags, cache, n, cols, seconds, repeats = json.loads(sys.argv[1])
b2 = brian_setup.brian2_module()
if flags is not None:
    b2.prefs.codegen.cpp.extra_compile_args_gcc = flags
b2.prefs.codegen.runtime.cython.cache_dir = cache
rng = np.random.default_rng(0)
cell = AdExParameters(C_pF=200.0, gL_nS=10.0, EL_mV=-70.0, DeltaT_mV=2.0, VT_mV=-50.0, Vr_mV=-55.0)
pop = [cell.with_values(a_nS=rng.uniform(0, 20), b_pA=rng.uniform(0, 300), tauw_ms=10 ** rng.uniform(1, 2.7),
                        VT_mV=-50 + rng.uniform(-6, 6), b2_pA=rng.uniform(0, 50)) for _ in range(n)]
dt = 2e-4
a = np.exp(-dt / 0.003)  # 3 ms correlated noise around 200 pA
current = 200.0 + 150.0 * lfilter([np.sqrt(1 - a * a)], [1, -a], rng.standard_normal(int(round(seconds * cols / dt))))
run = lambda: simulate_stimuli_segmented(pop, [current], dt, [seconds * cols], cols, 1.0)[0]
run()  # compiles
times = []
for _ in range(repeats):
    t0 = time.process_time()
    res = run()
    times.append(time.process_time() - t0)
digest = hashlib.sha256(b"".join(t.tobytes() for t in res.spike_times_s)).hexdigest()[:16]
print(json.dumps({"flags": b2.prefs.codegen.cpp.extra_compile_args_gcc, "cpu_s": min(times),
                  "spikes": int(sum(t.size for t in res.spike_times_s)), "spike_hash": digest}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from qsnmc_plugins.adex.brian_setup import COMPILE_ARGS

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in FLAG_SETS.items():
            if flags is None or isinstance(flags, str):
                flags = list(COMPILE_ARGS) + ([flags[1:]] if isinstance(flags, str) else [])
            arg = json.dumps([flags, os.path.join(tmp, name), args.candidates, args.columns, args.seconds,
                              args.repeats])
            out = subprocess.run([sys.executable, "-c", _CHILD, arg], capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()[-1]
            results[name] = json.loads(out)
            print(name, results[name], flush=True)
    results["workload"] = vars(args)
    (RESULTS / "adex_numerics.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
