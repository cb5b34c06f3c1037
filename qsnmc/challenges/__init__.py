"""Challenges: the store of challenge folders (embedded and imported), where they live, the
text readers, the importers of the competitions' file layouts, and of one's own recordings
(NWB files, plain arrays and acquisition files read with Neo, with the split they share), and
the NWB export.

Internal to qsnmc (a plugin uses :func:`qsnmc.load_challenge`). Depends on
:mod:`qsnmc.data` and :mod:`qsnmc.scoring.metrics`, never on the harness or the CLI.
"""
