"""The QSNMC 2007 importer's version policy, which the challenge loader checks.

Kept apart from the importer (:mod:`qsnmc.challenges.qsnmc2007`) so that the generic loader
(:mod:`qsnmc.challenges.store`) reads it without importing the importer, which imports the loader.
"""
from __future__ import annotations

from typing import Any

#: version of the 2007 importer's challenge design, saved in the manifest's provenance;
#: 1 (no number saved) tested on test/ (model-made spikes), 2 holds out recorded data
IMPORTER_VERSION = 2
#: what was wrong with each older version's challenges (shown when one is refused)
OLD_VERSIONS = {1: "it is scored against test/ spike times made by a model, not recorded from the cell"}
#: the 2007 importer's id in a manifest's provenance (version 1 wrote its then module name; kept stable)
IMPORTER = "qsnmc.import_qsnmc2007"
#: the challenge name the 2007 importer gives by default
DEFAULT_NAME = "qsnmc2007a"


def import_version_problem(manifest: dict[str, Any]) -> str | None:
    """Why a challenge written by another version of the 2007 importer is refused (naming the
    command that re-imports it), or None for any other challenge.

    Args:
        manifest: a challenge folder's parsed ``manifest.json``.
    """
    provenance = manifest.get("provenance") or {}
    if provenance.get("importer") != IMPORTER:
        return None
    found = provenance.get("importer_version", 1)
    if found == IMPORTER_VERSION:
        return None
    name = manifest.get("name", DEFAULT_NAME)
    source = provenance.get("source_dir") or "DIR"
    name_option = "" if name == DEFAULT_NAME else f" --name {name}"
    command = f"qsnmc data import-qsnmc2007 {source}{name_option} --force"
    if isinstance(found, int) and found > IMPORTER_VERSION:
        return (f"challenge {name!r} was imported by a newer qsnmc (2007 importer version {found}, "
                f"this one reads {IMPORTER_VERSION}); update qsnmc or re-import it: {command}")
    why = OLD_VERSIONS.get(found, "its design differs from this version's")
    return (f"challenge {name!r} was imported by an older qsnmc (2007 importer version {found}): {why}; "
            f"re-import it: {command}")
