"""Time the outside-model path on the embedded challenge: ``data export-kit``, the example script,
and ``qsnmc score`` of its files (each a fresh process, as a user runs them; best of 3 for export and score).

Run: ``python benchmarks/bench_outside.py``; writes ``benchmarks/results/outside.json``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "outside.json"


def timed(args: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    qsnmc = [sys.executable, "-m", "qsnmc.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export = []
        for i in range(3):
            export.append(timed(qsnmc + ["data", "export-kit", "embedded", f"kit{i}"], work))
        kit_mb = sum(f.stat().st_size for f in (work / "kit0").rglob("*") if f.is_file()) / 1e6
        script = timed([sys.executable, str(ROOT / "examples" / "outside_threshold.py"), "kit0", "pred"], work)
        score = [timed(qsnmc + ["score", "pred", "--challenge", "embedded", "--label", f"run{i}"], work)
                 for i in range(3)]
        # the command's own figure (files read and checked, scored, written), without Python's start-up
        proc = subprocess.run(qsnmc + ["score", "pred", "--challenge", "embedded", "--label", "inner"], cwd=work,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True)
        inner = float(proc.stderr.split(" in ")[1].split(" s;")[0])
        results = {
            "export_kit_embedded_s": min(export), "kit_MB": kit_mb, "example_script_s": script,
            "score_cli_s": min(score), "score_inside_command_s": inner,
        }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
