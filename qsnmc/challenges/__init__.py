"""Challenges: the store of challenge folders (embedded and imported), where they live, the
text readers and the importers of the competitions' file layouts.

Internal to qsnmc (a plugin uses :func:`qsnmc.load_challenge`). Depends on
:mod:`qsnmc.data` and :mod:`qsnmc.scoring.metrics`, never on the harness or the CLI.
"""
