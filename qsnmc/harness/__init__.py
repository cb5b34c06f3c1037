"""The harness: finding plugins, running each model in a sandboxed worker process
(locally or on Dask), supervising it, caching and storing run records, and sweeps.

Internal to qsnmc. Only the scoring process (the CLI) drives it; workers see the public
training data alone. Never imports :mod:`qsnmc.cli`.
"""
