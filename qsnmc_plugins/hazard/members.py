"""An ensemble's members: the seed each trains from, and its training curves for the fit record."""
from __future__ import annotations

from collections.abc import Sequence

from qsnmc import curve

MEMBER_SEED_STRIDE = 1000  #: member k of model seed s trains from seed 1000 s + k


def member_seed(seed: int, k: int) -> int:
    """The seed member ``k`` of a model of seed ``seed`` trains from."""
    return MEMBER_SEED_STRIDE * seed + k


def member_curves(k: int, losses: Sequence[float], unit: str, loss_label: str, evaluated: Sequence[int],
                  held_out: dict[str, tuple[Sequence[float], str]]) -> dict[str, dict]:
    """Member ``k``'s training loss per ``unit`` (step or iteration) and each held-out figure at the
    ``evaluated`` steps: ``{name: (values, y label)}``; as the fit record's curves ``"member k ..."``."""
    out = {f"member {k} loss": curve(range(1, len(losses) + 1), losses, unit, loss_label)}
    for name, (values, label) in held_out.items():
        out[f"member {k} {name}"] = curve(evaluated, values, unit, label)
    return out
