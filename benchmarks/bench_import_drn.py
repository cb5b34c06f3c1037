"""``qsnmc data import-neo`` on the GIF protocol: time and peak memory of each documented import of ``../shared/drn``.

Each of the five cells (a 60 s training sweep, 10 x 10 s test repetitions, a 10 s AEC sweep; 10 kHz
ABF files) is imported with its command of ``docs/real-cells.md`` (``--test-files``, ``--aec``) into a
temporary data folder, as a subprocess: wall and CPU time (Python start-up included) and the
child's peak resident memory (``ru_maxrss``), and the electrode resistance and R the import found.

Target (issue 36): each import <= 20 s.
Run: ``PYTHONPATH=$PWD python benchmarks/bench_import_drn.py`` (writes ``results/import_drn.json``).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench_import_neo import _cli

ROOT = Path(__file__).resolve().parents[1]
DRN = ROOT.parent / "shared" / "drn"
RESULTS = Path(__file__).parent / "results"
CELLS = ("156", "157", "159", "162", "165")


def main() -> None:
    out = {}
    with tempfile.TemporaryDirectory() as data:
        for cell in CELLS:
            stem = DRN / f"DRN{cell}_5HT" / f"DRN{cell}_5ht"
            wall, rss_mb, status, _, cpu = _cli(
                ["data", "import-neo", f"{stem}_training.abf", "--test-files", f"{stem}_test.abf", "--aec",
                 f"{stem}_aec.abf", "--name", f"drn{cell}"], Path(data))
            manifest = json.loads((Path(data) / "challenges" / f"drn{cell}" / "manifest.json").read_text())
            out[f"drn{cell}"] = {"status": status, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                 "peak_rss_mb": rss_mb, "R": round(manifest["reliability"]["S2"], 3),
                                 "electrode_MOhm": manifest["provenance"]["neo"]["aec"]["electrode_resistance_MOhm"]}
            print(f"drn{cell}", out[f"drn{cell}"], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "import_drn.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
