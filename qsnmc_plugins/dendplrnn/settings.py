"""The dendplrnn entry's settings: one frozen dataclass (the hazard readout grid's fields inherited)."""
from __future__ import annotations

from dataclasses import dataclass

from qsnmc import setting

from qsnmc_plugins.hazard.readout import ReadoutSettings


@dataclass(frozen=True)
class DendPLRNNSettings(ReadoutSettings):
    """The dendplrnn entry's settings (the hazard readout grid's are inherited)."""

    model_step_s: float = setting(1e-3, "network step (s): every spike resolvable at +-2 ms, 1-2 steps of upstroke "
                                        "after max-pooling", min=1e-5, max=0.01)
    clip_mV: float = setting(-20.0, "voltage clipping level (mV): spike peaks become a plateau", min=-80.0, max=60.0)
    heldout_fraction: float = setting(0.2, "end of each stimulus' training window held out for every choice",
                                      min=0.05, max=0.5)
    warmup_s: float = setting(1.0, "teacher-forced warm-up before a free run from recorded voltage (s)", min=0.0)
    input_taus_s: tuple[float, ...] = setting((0.02, 0.1, 0.5), "time constants of the current's low-pass "
                                                                "filtrates given as extra inputs (s)")
    members: tuple[tuple[int, int, int], ...] = setting(
        ((25, 24, 8), (0, 24, 8), (25, 24, 8), (0, 24, 8)),
        "the ensemble's members: (sparse teacher forcing interval tau in steps, 0 = none; latent units M; bases B)")
    steps: int = setting(900, "optimiser steps per member at budget 1", min=1)
    min_steps: int = setting(20, "optimiser steps per member at the smallest budget", min=1)
    eval_every: int = setting(100, "optimiser steps between held-out checkpoints at budget 1", min=1)
    seq_len: int = setting(250, "steps per training window with loss", min=10)
    burn_in: int = setting(30, "fully teacher-forced steps before a window's loss starts", min=0)
    batch_size: int = setting(64, "training windows per optimiser step", min=1)
    lr: float = setting(2e-2, "RAdam's learning rate", min=0.0)
    adam_beta2: float = setting(0.999, "RAdam's second-moment decay", min=0.0, max=1.0)
    lr_end_factor: float = setting(0.1, "the learning rate decays geometrically to this fraction over a "
                                        "member's steps", min=0.0, max=1.0)
    rollback_drop: float = setting(
        0.1, "a held-out P this far below the member's best so far is a collapse: training goes back to the best "
             "checkpoint's state at half the learning rate (0: never)", min=0.0)
    ema_decay: float = setting(0.97, "decay of the weights' moving average that is evaluated and checkpointed "
                                     "(0: the raw weights)", min=0.0, max=1.0)
    spike_share: float = setting(0.5, "share of the voltage loss carried by spike steps (spikes fill ~1 % of "
                                      "the steps)", min=0.0, max=0.99)
    spike_loss_weight: float = setting(1.0, "weight of the spike hazard's cross-entropy (relative to that of the "
                                            "base rate) in the loss", min=0.0)
    voltage_thresholds_mV: tuple[float, ...] = setting(
        (-50.0, -47.5, -45.0, -42.5, -40.0, -37.5, -35.0, -32.5, -30.0, -27.5, -25.0),
        "detection levels tried by the voltage readout (mV)")
    voltage_shifts_s: tuple[float, ...] = setting((0.0, 0.001, 0.002, 0.003, 0.004),
                                                  "time shifts tried by the voltage readout (s)")
