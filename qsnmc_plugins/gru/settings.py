"""The gru entry's settings: one frozen dataclass (the readout grid's fields inherited)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qsnmc import SettingsError, setting, settings_record

from qsnmc_plugins.hazard.readout import ReadoutSettings


@dataclass(frozen=True)
class GRUSettings(ReadoutSettings):
    """The gru entry's settings (the readout grid's are inherited)."""

    cell: Literal["gru", "lstm", "ln", "dendplrnn"] = setting(
        "gru", "recurrent cell; \"ln\": a non-recurrent control (128-bin causal filters, pointwise nonlinearity); "
               "\"dendplrnn\": the dendPLRNN's latent states (8 bases)")
    hidden: int = setting(64, "hidden units of the recurrent layer", min=1)
    members: int = setting(2, "networks in the ensemble (seeds 1000 seed + k)", min=1)
    predictor: Literal["ensemble", "best"] = setting(
        "ensemble", "what predicts: \"ensemble\", the members' hazards averaged; \"best\", the member or "
                    "ensemble of best members of highest held-out Gamma/R")
    model_step_s: float = setting(1e-3, "bin width (s): resolves spikes at +-2 ms (2007) and +-4 ms (2009)",
                                  min=1e-5, max=0.01)
    input_taus_s: tuple[float, ...] = setting(
        (0.02, 0.1, 0.5, 5.0, 20.0), "time constants of the current's low-pass filtrates given as inputs (s); "
        "the 5 and 20 s ones carry adaptation over tens of seconds")
    heldout_fraction: float = setting(0.2, "end of each stimulus' training window held out for every choice",
                                      min=0.05, max=0.5)
    steps: int = setting(400, "optimiser steps per member at budget 1", min=1)
    min_steps: int = setting(10, "optimiser steps per member at the smallest budget", min=1)
    batch_size: int = setting(32, "training windows per optimiser step", min=1)
    seq_bins: int = setting(1000, "bins per training window and prediction chunk whose targets count", min=10)
    burn_bins: int = setting(200, "burn-in bins before each training window (the state settles from zero)", min=0)
    predict_burn_bins: int = setting(1000, "burn-in bins before each prediction chunk (held-out and test): "
                                           "the state's slow part settles too", min=0)
    lr: float = setting(1e-2, "Adam's peak learning rate", min=0.0)
    adam_beta2: float = setting(0.99, "Adam's second-moment decay (below 0.999, so that the step shrinks soon "
                                      "after a spike bin's rare large gradient)", min=0.0, max=1.0)
    ema_decay: float = setting(0.99, "per-step decay of the weight average (0: none); checkpoints are of the "
                                     "average", min=0.0, max=1.0)
    keep: Literal["best", "last"] = setting("best", "checkpoint kept: the best on held-out, or the last")
    eval_every: int = setting(100, "optimiser steps between held-out evaluations (at most)", min=1)
    grad_clip: float = setting(1.0, "maximum norm of the gradient per optimiser step", min=0.0)
    max_recoveries: int = setting(3, "restarts from the last good checkpoint at half the learning rate after a "
                                     "non-finite loss, before training fails; also the most rollbacks", min=0)
    rollback_drop: float = setting(
        0.1, "a held-out Gamma/R this far below the best so far is a collapse: training goes back to the best "
             "checkpoint's state at half the learning rate (0: never)", min=0.0)
    voltage_weight: float = setting(
        0.0, "weight of the voltage auxiliary target (weighted MSE of the clipped, max-pooled, standardised "
             "voltage) against the hazard's cross-entropy over that of the base rate; 0: the hazard alone", min=0.0)
    teacher_forcing_bins: int = setting(
        0, "sparse teacher forcing interval (bins) of the dendPLRNN cell's voltage unit by the recorded voltage "
           "during training (Mikhaeil et al. 2022); 0: none. Needs cell dendplrnn and a voltage weight", min=0)
    clip_mV: float = setting(-20.0, "voltage target: clipping level (mV); spike peaks become a plateau",
                             min=-80.0, max=60.0)
    spike_share: float = setting(0.5, "voltage target: share of its loss carried by spike bins (spikes fill ~1 % "
                                      "of the bins)", min=0.0, max=0.99)

    def __post_init__(self) -> None:
        if self.teacher_forcing_bins > 0 and (self.cell != "dendplrnn" or self.voltage_weight <= 0):
            raise SettingsError(f"teacher_forcing_bins {self.teacher_forcing_bins} needs cell 'dendplrnn' (got "
                                f"{self.cell!r}) and voltage_weight > 0 (got {self.voltage_weight}): only the "
                                "dendPLRNN's voltage unit can be forced by the recorded voltage")

    def as_record(self) -> dict:
        return settings_record(self)
