"""Runs through a real dask.distributed LocalCluster: the same table as a local run, and a
Dask worker killed mid-run becomes a failed row while the run finishes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import read_rows, run_cli

distributed = pytest.importorskip("distributed")

SLEEPER = '''
import time
import numpy as np
import qsnmc

class Sleeper(qsnmc.Model):
    name = "sleeper"
    def fit(self, train):
        time.sleep(30)
    def predict(self, stimulus):
        return np.zeros(0)

@qsnmc.hookimpl
def qsnmc_register_models():
    return [Sleeper]
'''


@pytest.fixture(scope="module")
def cluster():
    import dask

    # no retry after a worker death: the killed task must come back as a failed row
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as lc, distributed.Client(lc) as client:
            yield lc, client


@pytest.fixture()
def work(tmp_path):
    (tmp_path / "submissions").mkdir()
    return tmp_path


@pytest.mark.slow
def test_dask_run_gives_the_same_table_as_a_local_run(work, data_dir, cluster):
    lc, _ = cluster
    common = ["run", "poisson", "lif", "--challenge", "synthetic-test", "--seed", "3", "--no-cache"]
    local = run_cli(common + ["--jobs", "2", "--json", "local.json"], cwd=work, data_dir=data_dir)
    assert local.returncode == 0, local.stderr
    remote = run_cli(common + ["--executor", "dask", "--scheduler", lc.scheduler_address, "--json", "dask.json"],
                     cwd=work, data_dir=data_dir)
    assert remote.returncode == 0, remote.stderr
    rows_local, rows_dask = read_rows(work / "local.json"), read_rows(work / "dask.json")
    assert set(rows_local) == set(rows_dask) == {"poisson", "lif"}
    for name in rows_local:
        assert rows_dask[name]["status"] == "ok"
        for key in ("rank", "gamma", "performance", "error", "verdict"):
            assert rows_dask[name][key] == rows_local[name][key], (name, key)
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    import json

    rec = json.loads((run_dir / "lif" / "record.json").read_text())
    assert rec["executor"] == "dask" and rec["host"].startswith("tcp://")
    assert (run_dir / "lif" / "worker.log").is_file()


@pytest.mark.slow
def test_dask_runs_each_model_and_seed_as_its_own_task(work, data_dir, cluster):
    lc, _ = cluster
    common = ["run", "poisson", "--challenge", "synthetic-test", "--seeds", "0,2", "--no-cache"]
    local = run_cli(common + ["--jobs", "2", "--json", "local.json"], cwd=work, data_dir=data_dir)
    assert local.returncode == 0, local.stderr
    remote = run_cli(common + ["--executor", "dask", "--scheduler", lc.scheduler_address, "--json", "dask.json"],
                     cwd=work, data_dir=data_dir)
    assert remote.returncode == 0, remote.stderr
    row_local, row_dask = read_rows(work / "local.json")["poisson"], read_rows(work / "dask.json")["poisson"]
    assert [s["seed"] for s in row_dask["seeds"]] == [0, 2] and row_dask["n_scored"] == 2
    for key in ("performance", "error", "seed_sd", "seeds"):
        assert row_dask[key] == row_local[key], key
    run_dir = work / "runs" / (work / "runs" / "LATEST").read_text().strip()
    import json

    for seed in (0, 2):
        rec = json.loads((run_dir / "poisson" / f"seed-{seed}" / "record.json").read_text())
        assert rec["seed"] == seed and rec["executor"] == "dask" and rec["numerics"]["blas"]


@pytest.mark.slow
def test_a_killed_dask_worker_becomes_a_failed_row(work, data_dir, cluster):
    lc, client = cluster
    (work / "submissions" / "sleeper.py").write_text(SLEEPER)
    env = dict(os.environ, QSNMC_DATA_DIR=str(data_dir))
    proc = subprocess.Popen(
        [sys.executable, "-m", "qsnmc.cli", "run", "sleeper", "lif", "--challenge", "synthetic-test", "--no-cache",
         "--executor", "dask", "--scheduler", lc.scheduler_address, "--json", "rows.json", "--timeout", "120"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            for addr, keys in client.processing().items():
                if any(str(k).startswith("qsnmc-sleeper") for k in keys):
                    victim = addr
            time.sleep(0.2)
        assert victim is not None, "the sleeper task never started"
        time.sleep(1.0)  # let it reach its fit
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)  # must finish long before the sleeper's 30 s fit would
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err  # some rows failed
    rows = read_rows(work / "rows.json")
    assert rows["sleeper"]["status"] == "failed" and "lost" in rows["sleeper"]["reason"], rows["sleeper"]
    assert rows["lif"]["status"] == "ok", rows["lif"]["reason"]
