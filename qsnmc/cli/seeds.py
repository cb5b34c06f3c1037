"""``--seed N`` and ``--seeds SPEC``: which seeds a run fits every model with.

A SPEC is a comma-separated list of non-negative integers and inclusive ranges
``A-B`` (A <= B): ``3``, ``0-2``, ``0,1,5``, ``0-2,7``. Seeds are fitted in the
order given; a seed given twice is refused.
"""
from __future__ import annotations

import argparse
import re

#: what a valid SPEC looks like, quoted in every error message
VALID_SPEC = "non-negative integers and ranges A-B with A <= B, comma-separated, no repeats (e.g. 3, 0-2, 0,1,5, 0-2,7)"

_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_seeds(spec: str) -> tuple[int, ...]:
    """The seeds of a SPEC, in the order given.

    Raises:
        ValueError: a one-line message naming the SPEC, what is wrong and what is valid.
    """
    def bad(why: str) -> ValueError:
        return ValueError(f"--seeds {spec!r}: {why}; expected {VALID_SPEC}")

    if not spec.strip():
        raise bad("empty")
    seeds: list[int] = []
    for item in spec.split(","):
        if re.match(r"^\s*-\s*\d", item):
            raise bad(f"negative seed {item.strip()!r}")
        match = _ITEM.match(item)
        if match is None:
            raise bad(f"{item.strip()!r} is not an integer or a range" if item.strip() else "an empty item")
        first = int(match.group(1))
        last = first if match.group(2) is None else int(match.group(2))
        if last < first:
            raise bad(f"reversed range {item.strip()!r}")
        seeds.extend(range(first, last + 1))
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise bad(f"seed{'s' if len(repeated) > 1 else ''} {', '.join(map(str, repeated))} given twice")
    return tuple(seeds)


def seed_value(text: str) -> int:
    """A ``--seed``: a non-negative integer.

    Raises:
        ValueError: a one-line message naming the value and what is valid.
    """
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--seed {text!r}: not an integer; expected a non-negative integer (e.g. 0)") from None
    if value < 0:
        raise ValueError(f"--seed {value}: negative; expected a non-negative integer (e.g. 0)")
    return value


class _Checked(argparse.Action):
    """Stores the parsed value, or exits with status 2 and one line naming what is wrong (before any work)."""

    def __init__(self, *args, parse, excludes: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.parse = parse
        self.excludes = excludes

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        try:
            if self.excludes and getattr(namespace, self.excludes, None) is not None:
                raise ValueError("--seed and --seeds exclude each other: give one seed (--seed N) or several "
                                 "(--seeds SPEC)")
            setattr(namespace, self.dest, self.parse(values))
        except ValueError as exc:
            parser.exit(2, f"{parser.prog}: {exc}\n")


def add_seed_options(parser: argparse.ArgumentParser, *, several: bool) -> None:
    """Add ``--seed N`` and, with ``several``, ``--seeds SPEC`` (the two exclusive); both are checked
    while the command line is parsed, each error one line and exit status 2."""
    parser.add_argument("--seed", action=_Checked, parse=seed_value, excludes="seeds" if several else "",
                        default=None, metavar="N", help="seed passed to every model (default 0)")
    if several:
        parser.add_argument("--seeds", action=_Checked, parse=parse_seeds, excludes="seed", default=None,
                            metavar="SPEC", help="fit every model once per seed (exclusive with --seed) and rank "
                            "the means over seeds: e.g. 0-2, 0,1,5 or 0-2,7 (each (model, seed) is its own job, "
                            "cached on its own)")


def chosen_seeds(args: argparse.Namespace) -> tuple[int, ...]:
    """The run's seeds: ``--seeds``, else ``(--seed,)``, else ``(0,)``."""
    seeds = getattr(args, "seeds", None)
    if seeds is not None:
        return tuple(seeds)
    return (0 if args.seed is None else args.seed,)
