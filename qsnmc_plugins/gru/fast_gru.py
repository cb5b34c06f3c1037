"""A one-layer GRU with a hand-written backward pass (one autograd node per window).

``torch.nn.GRU`` on the CPU records about ten autograd nodes per time step; on the gru entry's
small tensors (32 windows x 64 units) their bookkeeping is about a third of a training step
(``benchmarks/bench_fast_gru.py``). Here the forward loop runs without autograd, in the same
operations and order as torch's CPU cell (so its outputs equal ``nn.GRU``'s: the input
projection of every step in one matrix product, then per step ``r, z = sigmoid(W_h h + b_h + W_i x + b_i)``,
``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``, ``h' = (h - n) z + n``); the backward loop
propagates the state gradient with a few in-place operations per step, and each weight gradient
is one matrix product over the whole window. Gradients equal autograd's to round-off (tests).
On a GPU, :class:`FastGRU` is ``nn.GRU`` (cuDNN's fused kernels beat a loop of small launches).
"""
from __future__ import annotations

import torch
from torch import nn


class _GRUWindow(torch.autograd.Function):
    """Time-major (T, N, .) buffers, so that every step reads and writes contiguous blocks."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh):
        # x (T, N, n_in); w_ih (3H, n_in); w_hh (3H, H); b_ih, b_hh (3H,); rows ordered r, z, n
        T, N, _ = x.shape
        H = w_hh.shape[1]
        gi = torch.nn.functional.linear(x, w_ih, b_ih)  # (T, N, 3H): every step's input part at once
        w_hhT = w_hh.T
        hs = x.new_zeros(T + 1, N, H)  # hs[t]: the state entering step t; hs[t + 1] its output
        gh = x.new_empty(T, N, 3 * H)  # W_h h + b_h; its r, z part becomes the gates r, z
        new = x.new_empty(T, N, H)
        # per-step views, made once (indexing in the loop would cost as much as the arithmetic)
        steps = zip(hs.unbind(0), hs[1:].unbind(0), gh.unbind(0), gh[..., :2 * H].unbind(0),
                    gh[..., :H].unbind(0), gh[..., H:2 * H].unbind(0), gh[..., 2 * H:].unbind(0),
                    gi[..., :2 * H].unbind(0), gi[..., 2 * H:].unbind(0), new.unbind(0))
        for h, h_next, gh_t, rz_t, r_t, z_t, ghn_t, gi_rz, gi_n, n_t in steps:
            torch.addmm(b_hh, h, w_hhT, out=gh_t)
            rz_t.add_(gi_rz).sigmoid_()
            torch.mul(ghn_t, r_t, out=n_t).add_(gi_n).tanh_()
            torch.sub(h, n_t, out=h_next).mul_(z_t).add_(n_t)
        ctx.save_for_backward(x, w_ih, w_hh, hs, gh, new)
        return hs[1:]

    @staticmethod
    def backward(ctx, g_out):
        x, w_ih, w_hh, hs, gh, new = ctx.saved_tensors
        T, N, H = g_out.shape
        r, z, ghn = gh[..., :H], gh[..., H:2 * H], gh[..., 2 * H:]
        # each pre-activation's gradient is dh (the state's) times a factor known after the forward pass
        f_n = (1.0 - z) * (1.0 - new * new)  # n's: dh (1 - z) (1 - n^2)
        f_z = (hs[:-1] - new) * z * (1.0 - z)  # z's: dh (h - n) z (1 - z)
        f_r = ghn * r * (1.0 - r)  # r's: (n's gradient) ghn r (1 - r)
        d_gh = g_out.new_empty(T, N, 3 * H)  # of W_h h + b_h (r, z: also of the input part's)
        d_n = g_out.new_empty(T, N, H)  # of n's pre-activation (the input part's n)
        dh = g_out.new_zeros(N, H)  # the state's, from later steps
        steps = zip(g_out.unbind(0), d_gh.unbind(0), d_gh[..., :H].unbind(0), d_gh[..., H:2 * H].unbind(0),
                    d_gh[..., 2 * H:].unbind(0), d_n.unbind(0), f_n.unbind(0), f_r.unbind(0), f_z.unbind(0),
                    r.unbind(0), z.unbind(0))
        for g_t, dgh_t, dr_t, dz_t, dghn_t, dn_t, fn_t, fr_t, fz_t, r_t, z_t in reversed(list(steps)):
            dh.add_(g_t)
            torch.mul(dh, fn_t, out=dn_t)
            torch.mul(dn_t, fr_t, out=dr_t)
            torch.mul(dh, fz_t, out=dz_t)
            torch.mul(dn_t, r_t, out=dghn_t)
            dh = torch.addmm(dh.mul_(z_t), dgh_t, w_hh)  # the state entering step t
        d_rz, flat_n, h_prev = d_gh[..., :2 * H].reshape(-1, 2 * H), d_n.reshape(-1, H), hs[:-1].reshape(-1, H)
        flat_x = x.reshape(-1, x.shape[2])
        d_w_ih = torch.cat([d_rz.T @ flat_x, flat_n.T @ flat_x])
        d_x = None
        if ctx.needs_input_grad[0]:
            d_x = (d_rz @ w_ih[:2 * H] + flat_n @ w_ih[2 * H:]).reshape(x.shape)
        d_w_hh = (h_prev.T @ d_gh.reshape(-1, 3 * H)).T
        d_b_ih = torch.cat([d_rz.sum(0), flat_n.sum(0)])
        return d_x, d_w_ih, d_w_hh, d_b_ih, d_gh.reshape(-1, 3 * H).sum(0)


class FastGRU(nn.GRU):
    """``torch.nn.GRU`` (one layer, ``batch_first``, from a zero state) whose forward and backward
    run through :class:`_GRUWindow` on the CPU; same parameters and state dict as ``nn.GRU``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """States (B, T, hidden) of windows ``x`` (B, T, n_in) from a zero state, and the last (1, B, hidden)."""
        if hx is not None:
            raise ValueError("FastGRU starts from a zero state")
        if x.dim() != 3:
            raise ValueError(f"FastGRU takes batched windows (B, T, n_in), got shape {tuple(x.shape)}")
        if x.is_cuda:
            return super().forward(x)
        out = _GRUWindow.apply(x.transpose(0, 1).contiguous(), self.weight_ih_l0, self.weight_hh_l0,
                               self.bias_ih_l0, self.bias_hh_l0)
        return out.transpose(0, 1), out[-1:]
