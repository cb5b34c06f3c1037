"""The dendPLRNN's rollout with a hand-written backward pass (one autograd node per window).

Autograd on :meth:`DendPLRNN.rollout` records about ten nodes per time step, and their
bookkeeping dominates a training iteration on these small tensors. Here the forward loop
runs without autograd (five in-place tensor operations per step), and the backward loop
propagates the state gradient with four; every parameter gradient is then one
vectorised operation over the whole window. Same arithmetic as ``rollout`` (gradients
equal to round-off, see tests), on CPU or GPU.

With ``H`` the (B + 1, m) thresholds (the B learned ones and 0) and ``a`` the (B + 1,)
weights (alpha and -sum alpha), the basis is phi(z) = sum_b a_b relu(z - H_b) and

    p_t = A * z_{t-1} + phi(z_{t-1}) W_off^T + d_t,     z_t = p_t, observed units forced on forcing steps

where d_t = h_0 + C s_t. The returned predictions are the p_t (before forcing).
"""
from __future__ import annotations

import torch


#: time steps per chunk of the vectorised gradient passes (keeps the (batch, chunk, m, B + 1)
#: temporaries in cache)
CHUNK = 16


class _Rollout(torch.autograd.Function):
    """Time-major buffers (T, N, m), so that every step reads and writes contiguous blocks
    in place, without allocations."""

    @staticmethod
    def forward(ctx, z0, drive, A, W_offT, H, a, observations, forcing_steps, n_obs):
        # z0 (N, m), drive (T, N, m), A (m,), W_offT (m, m), H (B+1, m), a (B+1,),
        # observations (T, N, n_obs) or None, forcing_steps: sorted python list of forced steps
        T, N, m = drive.shape
        nb = H.shape[0]
        forced = set(forcing_steps)
        P = torch.empty(T, N, m, dtype=drive.dtype, device=drive.device)
        HT = H.T.contiguous()  # (m, B+1): the bases of a unit side by side
        U = torch.empty(N, m, nb, dtype=drive.dtype, device=drive.device)
        phi = torch.empty(N * m, dtype=drive.dtype, device=drive.device)
        P[0] = z0
        z = z0
        if 0 in forced:  # step 0's state is z0 with its observed units forced, as every later step's
            z = z0.clone()
            z[:, :n_obs] = observations[0]
        for t in range(1, T):
            torch.sub(z.unsqueeze(2), HT, out=U).clamp_min_(0.0)
            torch.mv(U.view(-1, nb), a, out=phi)
            p = torch.addmm(drive[t], phi.view(N, m), W_offT, out=P[t])
            p.addcmul_(A, z)
            if t in forced:
                p = p.clone()
                p[:, :n_obs] = observations[t]
            z = p
        ctx.save_for_backward(P, z0, A, W_offT, H, a, observations)
        ctx.forced = forcing_steps
        ctx.n_obs = n_obs
        return P

    @staticmethod
    def backward(ctx, gP):
        P, z0, A, W_offT, H, a, observations = ctx.saved_tensors
        T, N, m = gP.shape
        k = ctx.n_obs
        # the state entering each step: the previous prediction, with the data on forced steps
        Zprev = torch.empty_like(P)
        Zprev[1:] = P[:-1]
        Zprev[1] = z0
        for t in ctx.forced:
            if t + 1 < T:
                Zprev[t + 1, :, :k] = observations[t]
        HT = H.T.contiguous()
        # the slope d phi_i / d z_i at every state, in time chunks that stay in cache
        slope = torch.empty(T, N, m, dtype=gP.dtype, device=gP.device)
        for lo in range(1, T, CHUNK):
            hi = min(T, lo + CHUNK)
            slope[lo:hi] = ((Zprev[lo:hi].unsqueeze(3) - HT) > 0).to(gP.dtype) @ a
        W_off = W_offT.T.contiguous()
        gP = gP.contiguous()
        G = torch.empty_like(gP)  # total gradient of each p_t
        G[0] = 0.0
        Gphi = torch.empty_like(gP)
        gz = torch.zeros(N, m, dtype=gP.dtype, device=gP.device)  # gradient of z_t from later steps
        forced = set(ctx.forced)
        for t in range(T - 1, 0, -1):
            if t in forced:
                gz[:, :k] = 0.0  # the forced units were overwritten by data
            g = torch.add(gz, gP[t], out=G[t])
            gphi = torch.mm(g, W_off, out=Gphi[t])
            gz = torch.mul(gphi, slope[t]).addcmul_(A, g)
        Gt, Zt = G[1:].reshape(-1, m), Zprev[1:].reshape(-1, m)
        dA = (Gt * Zt).sum(0)
        dW_offT = torch.zeros_like(W_offT)
        dH_T = torch.zeros_like(HT)  # (m, B+1)
        da = torch.zeros_like(a)
        for lo in range(1, T, CHUNK):
            hi = min(T, lo + CHUNK)
            diff = Zprev[lo:hi].unsqueeze(3) - HT  # (c, N, m, B+1)
            above = (diff > 0).to(gP.dtype)
            relu = diff.mul_(above)
            gphi = Gphi[lo:hi].unsqueeze(3)
            dW_offT += (relu @ a).reshape(-1, m).T @ G[lo:hi].reshape(-1, m)
            dH_T -= (above.mul_(gphi)).sum((0, 1))
            da += (relu.mul_(gphi)).sum((0, 1, 2))
        return None, G, dA, dW_offT, dH_T.T * a[:, None], da, None, None, None


def fast_rollout(net, z0: torch.Tensor, inputs: torch.Tensor, observations: torch.Tensor | None = None,
                 forcing=None) -> torch.Tensor:
    """All latent states p_t (batch, T, m) of ``net`` over ``inputs`` (batch, T, n_in) from ``z0``.

    Like :meth:`DendPLRNN.rollout` (sparse teacher forcing where ``forcing[t]`` is True,
    after p_t is recorded; no generalised forcing) but returning every latent unit, so
    that readouts besides the voltage (the spike hazard) can be taken from the states.
    """
    drive = net.drives(inputs)
    W_offT = (net.W * net.offdiag).T
    H = torch.cat([net.thresholds, torch.zeros(1, net.m, dtype=drive.dtype, device=drive.device)])
    a = torch.cat([net.alpha, -net.alpha.sum().unsqueeze(0)])
    steps = [] if forcing is None else [int(t) for t in torch.as_tensor(forcing).nonzero().flatten().tolist()]
    if steps and observations is None:
        raise ValueError("forcing needs observations")
    obs_tm = observations.transpose(0, 1).contiguous() if observations is not None else None
    P = _Rollout.apply(z0, drive.transpose(0, 1).contiguous(), net.A, W_offT, H, a, obs_tm, steps, net.n_obs)
    return P.transpose(0, 1)
