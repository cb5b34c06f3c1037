"""Built-in qsnmc model plugins (installed as the ``qsnmc_plugins`` package).

Each plugin is one module or sub-package registered in the ``qsnmc`` entry-point
group in ``pyproject.toml``, exactly as a third-party plugin would be.
"""
