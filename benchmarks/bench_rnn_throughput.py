"""Training throughput of the recurrent entries, timed in one run (issue: faster RNN training).

Times whole optimiser iterations (forward, backward, step) on random data of the default
shapes, after warm-up iterations, and reports samples per second (batch x time steps per
iteration / seconds), per wall second and per CPU second of this process (on a shared machine
the wall figure falls with the load; the CPU figure much less). Each case is timed in several
rounds taking turns, the fastest round counting:

- ``dendplrnn``: the dendPLRNN's training iteration as the model runs it (``training.batch_loss``:
  the hand-written-backward rollout of :mod:`fast_rollout` with sparse teacher forcing, the
  voltage MSE plus the spike hazard's cross-entropy) at its default :class:`TrainConfig`
  (M = 24 latent units, B = 8 bases, batch 64, 30 + 250 steps), RAdam;
- ``dendplrnn-autograd``: the same network through plain autograd (``DendPLRNN.rollout``), for reference;
- ``torch-gru-24``: ``torch.nn.GRU`` with the dendPLRNN's hidden size on the same batch and
  window, a linear voltage readout, Adam: the throughput the issue asks the dendPLRNN to reach;
- ``gru-entry``: the ``gru`` entry's network (64 units, batch 32, 200 + 1000 bins, BCE on a hazard).

Writes ``results/rnn_throughput.json`` (or ``--out``) with the device, the CPU, the thread count,
whether torch ran deterministic algorithms (``--deterministic 1``, as the fits do; 0 to measure
what determinism costs) and the machine's load average at the start (the 2-core machine is often shared).
Run: ``python benchmarks/bench_rnn_throughput.py [--iterations N] [--deterministic 0|1]``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from qsnmc_plugins.dendplrnn.network import DendPLRNN
from qsnmc_plugins.dendplrnn.training import forcing_schedule
from qsnmc_plugins.dendplrnn.training import TrainConfig, batch_loss

OUT = Path(__file__).parent / "results" / "rnn_throughput.json"


def timed(step: Callable[[], None], warmup: int, iterations: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process) per call of ``step`` after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iterations, (time.process_time() - c0) / iterations


def dendplrnn_step(device: torch.device, autograd: bool = False) -> tuple[Callable[[], None], int]:
    cfg = TrainConfig(n_in=4, spike_loss_weight=0.0 if autograd else 1.0)  # inputs: current + 3 filtrates
    g = torch.Generator().manual_seed(0)
    net = DendPLRNN(cfg.m, cfg.n_bases, n_in=cfg.n_in, generator=g).to(device)
    opt = torch.optim.RAdam(net.parameters(), lr=cfg.lr)
    n_steps = cfg.burn_in + cfg.seq_len
    inputs = torch.randn(cfg.batch_size, n_steps, cfg.n_in, device=device)
    obs = torch.randn(cfg.batch_size, n_steps, 1, device=device)
    weights = torch.ones(cfg.batch_size, n_steps, device=device)
    spikes = (torch.rand(cfg.batch_size, n_steps, device=device) < 0.01).float()
    forcing = torch.as_tensor(forcing_schedule(n_steps, cfg.tau, cfg.burn_in))
    z0 = torch.zeros(cfg.batch_size, cfg.m, device=device)

    def step() -> None:
        opt.zero_grad()
        if autograd:
            pred = net.rollout(z0, inputs, obs, forcing)
            loss = torch.mean((pred[:, cfg.burn_in:] - obs[:, cfg.burn_in:]) ** 2)
        else:
            loss = batch_loss(net, obs, inputs, weights, cfg, spikes)
        loss.backward()
        opt.step()
        net.project()

    return step, cfg.batch_size * n_steps


def torch_gru_step(device: torch.device, hidden: int, batch: int, n_steps: int, n_in: int,
                   bce: bool) -> tuple[Callable[[], None], int]:
    torch.manual_seed(0)
    rnn = torch.nn.GRU(n_in, hidden, batch_first=True).to(device)
    head = torch.nn.Linear(hidden, 1).to(device)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3)
    inputs = torch.randn(batch, n_steps, n_in, device=device)
    target = torch.rand(batch, n_steps, 1, device=device) if bce else torch.randn(batch, n_steps, 1, device=device)

    def step() -> None:
        opt.zero_grad()
        out = head(rnn(inputs)[0])
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(out, target) if bce
                else torch.mean((out - target) ** 2))
        loss.backward()
        opt.step()

    return step, batch * n_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all cases; the fastest round counts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the fits use 1)")
    parser.add_argument("--deterministic", type=int, choices=(0, 1), default=1,
                        help="torch.use_deterministic_algorithms (the fits use 1)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    torch.use_deterministic_algorithms(bool(args.deterministic))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = TrainConfig(n_in=4)
    cases = {
        "dendplrnn": dendplrnn_step(device),
        "dendplrnn-autograd": dendplrnn_step(device, autograd=True),
        "torch-gru-24": torch_gru_step(device, cfg.m, cfg.batch_size, cfg.burn_in + cfg.seq_len, cfg.n_in, bce=False),
        "gru-entry": torch_gru_step(device, 64, 32, 1200, 4, bce=True),
    }
    torch.set_num_threads(args.threads)
    results = {"device": str(device), "device_name": torch.cuda.get_device_name(0) if device.type == "cuda"
               else platform.processor() or platform.machine(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "deterministic": torch.are_deterministic_algorithms_enabled(),
               "load_average_at_start": os.getloadavg(), "cases": {}}
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):  # the cases take turns, so that a shared machine's load hits them alike
        for name, (step, samples) in cases.items():
            wall, cpu = timed(step, args.warmup, args.iterations)
            old = best.get(name, (math.inf, math.inf))
            best[name] = (min(old[0], wall), min(old[1], cpu))
    for name, (step, samples) in cases.items():
        seconds, cpu = best[name]
        results["cases"][name] = {"seconds_per_iteration": seconds, "cpu_seconds_per_iteration": cpu,
                                  "samples_per_iteration": samples, "samples_per_s": samples / seconds,
                                  "samples_per_cpu_s": samples / cpu}
        print(f"{name}: {seconds * 1e3:.0f} ms per iteration ({cpu * 1e3:.0f} ms CPU), "
              f"{samples / seconds / 1e6:.2f} M samples/s ({samples / cpu / 1e6:.2f} M per CPU s)", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
