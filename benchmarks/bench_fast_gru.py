"""One training step of the gru entry's network with torch.nn.GRU's autograd and with FastGRU.

The entry's default shape (32 windows of 200 burn-in + 1000 loss bins, 6 input channels, 64
units, one thread); each step: forward, binary cross-entropy, backward, gradient clipping,
Adam. The two cases take turns (``--repeats`` rounds of ``--steps`` steps each) and the best
round of each is kept, so that load from other processes hurts both alike. Also checks that the
forward passes agree bit for bit. Writes ``results/fast_gru.json``.

Usage::

    python benchmarks/bench_fast_gru.py [--steps 10] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn

from qsnmc_plugins.gru.network import SpikeHazardNet

RESULTS = Path(__file__).resolve().parent / "results"
BATCH, BINS, BURN, N_IN, HIDDEN = 32, 1200, 200, 6, 64


def network(fast: bool) -> SpikeHazardNet:
    torch.manual_seed(0)
    net = SpikeHazardNet(N_IN, HIDDEN, "gru", 0.01)
    if not fast:  # the same parameters in torch's own GRU
        reference = nn.GRU(N_IN, HIDDEN, batch_first=True)
        reference.load_state_dict(net.rnn.state_dict())
        net.rnn = reference
    return net


def seconds_per_step(net: SpikeHazardNet, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t = time.perf_counter()
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(net(x)[:, BURN:], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, BINS, N_IN, generator=gen)
    y = (torch.rand(BATCH, BINS - BURN, generator=gen) < 0.01).float()
    nets = {"nn.GRU (autograd)": network(False), "FastGRU": network(True)}
    with torch.no_grad():
        same_forward = torch.equal(nets["nn.GRU (autograd)"](x), nets["FastGRU"](x))
    best = {k: float("inf") for k in nets}
    for _ in range(args.repeats):
        for name, net in nets.items():
            best[name] = min(best[name], seconds_per_step(net, x, y, args.steps))
    out = {"case": f"batch {BATCH} x {BINS} bins, {N_IN} inputs, {HIDDEN} units, 1 thread",
           "ms_per_step": {k: 1e3 * v for k, v in best.items()},
           "speedup": best["nn.GRU (autograd)"] / best["FastGRU"],
           "forward_bit_identical": same_forward, "torch": torch.__version__, "cpu": platform.processor(),
           "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fast_gru.json").write_text(json.dumps(out, indent=1))
    for name, v in best.items():
        print(f"{name}: {1e3 * v:.0f} ms per step")
    print(f"speed-up {out['speedup']:.2f}x; forward bit-identical: {same_forward}")


if __name__ == "__main__":
    main()
