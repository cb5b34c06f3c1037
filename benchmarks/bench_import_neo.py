"""``qsnmc data import-neo``: time and peak memory of listing a 16-sweep ABF file and importing a 10 min recording.

1. Each 16-sweep ABF file of ``../shared/abf`` (``2020_03_02_0000.abf``: 16 x 2 s at 10 kHz, two
   channels; ``17o05028_ic_steps.abf``: 16 x 3 s at 20 kHz, current from the protocol): the
   whole ``qsnmc data import-neo FILE --dry-run`` as a subprocess (read, group, list; Python
   start-up included; the start-up alone, ``import-neo --help``, is timed too), best of 3, and the
   same steps in process. Neither file repeats a stimulus, so the dry run lists 16
   stimuli and exits 2 ("no repeated stimulus"), as a real import of it would.
2. A 10 min recording at 20 kHz written here with Neo's NixIO: 20 sweeps of 30 s, 4
   frozen-noise stimuli x 5 repetitions, voltage (mV) and current (pA) channels; its spikes come
   from a leaky integrator with a threshold, vectorised (not a model under test). Imported with
   ``--train-until 20`` into a temporary data folder as a subprocess; wall and CPU time and the
   child's peak resident memory (``ru_maxrss``).

Targets (issue 27): listing <= 5 s; the 10 min import <= 30 s and <= 1 GB.
Run: ``PYTHONPATH=$PWD python benchmarks/bench_import_neo.py`` (writes ``results/import_neo.json``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ABF = ROOT.parent / "shared" / "abf"
RESULTS = Path(__file__).parent / "results"
DT_S = 5e-5  # 20 kHz
SWEEP_S, N_STIMULI, N_REPS = 30.0, 4, 5


def _cli(args: list[str], data_dir: Path) -> tuple[float, int, int, str, float]:
    """Wall time (s), peak RSS (MB), exit status, stdout and CPU time (s) of ``python -m qsnmc.cli ARGS``."""
    env = {**os.environ, "QSNMC_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    # a fresh interpreter per call: ru_maxrss of RUSAGE_CHILDREN is the largest child so far, so
    # the big import runs first in its own wrapper process
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
               "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
               "print(u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "qsnmc.cli", *args], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    rss_kb, cpu_s = proc.stderr.strip().splitlines()[-1].split()
    return wall, int(rss_kb) // 1024, proc.returncode, proc.stdout, float(cpu_s)


def _list_in_process(path: Path, protocol: bool) -> float:
    """Seconds to read, group and list a file in this process (Neo and qsnmc already imported)."""
    from qsnmc.challenges.neo_challenge import find_stimuli, listing
    from qsnmc.challenges.neo_import import read_sweeps

    start = time.perf_counter()
    sweeps, facts = read_sweeps([path], current_from_protocol=protocol)
    listing(find_stimuli(sweeps), facts, 2.0, 0.1)
    return time.perf_counter() - start


def write_long_recording(path: Path, seed: int = 0) -> Path:
    """20 sweeps x 30 s at 20 kHz (10 min): 4 frozen-noise currents, 5 repetitions each, interleaved."""
    import neo
    import quantities as pq
    from neo.io import NixIO
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(round(SWEEP_S / DT_S))
    a_i, a_v = np.exp(-DT_S / 0.003), np.exp(-DT_S / 0.02)
    currents = [200 + lfilter([np.sqrt(1 - a_i ** 2) * 250], [1, -a_i], rng.normal(size=n))
                for _ in range(N_STIMULI)]
    block = neo.Block(name="long synthetic cell")
    for r in range(N_REPS):
        for k, current in enumerate(currents):
            drive = current + rng.normal(0, 30, n)  # intrinsic noise: repetitions differ
            v = -70 + lfilter([(1 - a_v) * 0.1], [1, -a_v], drive)  # mV, 100 MOhm
            up = np.flatnonzero((v[1:] >= -52) & (v[:-1] < -52))
            up = up[np.concatenate([[True], np.diff(up) > 60])]  # 3 ms refractory
            for i in up:
                v[i + 1:i + 21] = 30.0  # a 1 ms spike
            segment = neo.Segment(name=f"stimulus {k + 1}, repetition {r + 1}")
            segment.analogsignals += [
                neo.AnalogSignal(v[:, None], units="mV", sampling_period=DT_S * pq.s, name="Vm"),
                neo.AnalogSignal(current[:, None], units="pA", sampling_period=DT_S * pq.s, name="Iinj"),
            ]
            block.segments.append(segment)
    with NixIO(str(path), mode="ow") as io:
        io.write_block(block)
    return path


def main() -> None:
    out: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_average": os.getloadavg(), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-neo-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        big = write_long_recording(tmp / "long.nix")
        out["long_file"] = {"write_s": round(time.perf_counter() - start, 1), "mb": round(big.stat().st_size / 1e6, 1),
                            "sweeps": N_STIMULI * N_REPS, "sweep_s": SWEEP_S, "rate_hz": 1 / DT_S}
        wall, peak, rc, stdout, cpu = _cli(["data", "import-neo", str(big), "--train-until", "20"], tmp / "data")
        assert rc == 0, stdout
        out["long_import"] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": peak, "exit": rc,
                              "listing": stdout.split("\n\nchallenge ")[0]}
        print(f"10 min at 20 kHz ({out['long_file']['mb']} MB NIX): import {wall:.1f} s ({cpu:.1f} s CPU), "
              f"peak {peak} MB", flush=True)
        start = _cli(["data", "import-neo", "--help"], tmp / "data")
        out["cli_start_s"] = {"wall_s": round(start[0], 2), "cpu_s": round(start[4], 2)}
        for name, extra in (("2020_03_02_0000.abf", []), ("17o05028_ic_steps.abf", ["--current-from-protocol"])):
            runs = [_cli(["data", "import-neo", str(ABF / name), "--dry-run", *extra], tmp / "data") for _ in range(3)]
            best = min(runs)
            out[name] = {"wall_s_best_of_3": round(best[0], 2), "wall_s": [round(r[0], 2) for r in runs],
                         "cpu_s": [round(r[4], 2) for r in runs],
                         "in_process_s_best_of_3": round(min(_list_in_process(ABF / name, bool(extra))
                                                             for _ in range(3)), 3),
                         "peak_rss_mb": best[1], "exit": best[2], "stimuli_listed": best[3].count("\nS")}
            print(f"{name} --dry-run {' '.join(extra)}: {best[0]:.2f} s (best of 3, {best[4]:.2f} s CPU; "
                  f"{out[name]['in_process_s_best_of_3']}"
                  f" s in process), peak {best[1]} MB, {out[name]['stimuli_listed']} stimuli listed, exit {best[2]}",
                  flush=True)
        print(f"CLI start-up (import-neo --help): {start[0]:.2f} s ({start[4]:.2f} s CPU)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "import_neo.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
