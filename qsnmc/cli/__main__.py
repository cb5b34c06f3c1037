"""``python -m qsnmc.cli``: the same as the ``qsnmc`` command."""
import sys

from qsnmc.cli.main import main

sys.exit(main())
