"""The command line (``qsnmc``): commands, the HTML report and ``qsnmc new``. The only
layer that may import every other; nothing imports it."""
from qsnmc.cli.main import main

__all__ = ["main"]
