"""Listing every model, importing plugin code only inside an isolated worker."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qsnmc.harness.plugins import PluginSource, find_sources
from qsnmc.harness.sandbox import wrap
from qsnmc.harness.supervise import run_supervised

#: wall-clock limit (s) for importing plugins in one discovery worker ($QSNMC_DISCOVERY_TIMEOUT)
DISCOVERY_TIMEOUT_S = float(os.environ.get("QSNMC_DISCOVERY_TIMEOUT", "120"))
DISCOVERY_MEMORY_MB = 4000.0


@dataclass
class ModelEntry:
    """One model as the harness knows it, or one source that failed to give models.

    Attributes:
        name: the model's name (for a failed source: a name derived from the source).
        source: where it comes from.
        description: one line, from the model class.
        version: the plugin's ``__version__`` or its distribution's version.
        error: why it cannot run (import error, name clash, ...), or None.
        param_grid: the model's ``param_grid`` (setting name -> values) for ``qsnmc sweep``, or None.
        settings: the model's settings schema (:func:`qsnmc.settings.settings_schema`: name ->
            type, default, doc, bounds), or None when its constructor takes arbitrary keywords.
        typical_fit_s: the model's ``typical_fit_s`` (s at budget 1, one core), or None: a run starts
            its longest jobs first.
    """

    name: str
    source: PluginSource
    description: str = ""
    version: str = ""
    error: str | None = None
    param_grid: dict[str, list] | None = None
    settings: dict[str, dict] | None = None
    typical_fit_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _fallback_name(src: PluginSource) -> str:
    return Path(src.target).stem if src.kind == "submission" else src.target.rsplit(".", 1)[-1]


def _run_discovery(sources: list[PluginSource], workdir: Path) -> tuple[dict[str, dict], str]:
    """One discovery worker over ``sources``; returns reports by target and the worker's log tail."""
    (workdir / "sources.json").write_text(json.dumps([s.to_dict() for s in sources]))
    out = workdir / "discovered.jsonl"
    out.unlink(missing_ok=True)
    code = [p for s in sources for p in s.paths]
    cmd, env, sandboxed = wrap(
        [sys.executable, "-m", "qsnmc.harness.worker", "discover", str(out), str(workdir / "sources.json")],
        workdir=workdir,
        code_paths=code,
    )
    env["QSNMC_PROGRESS"] = "0"
    outcome = run_supervised(
        cmd, env=env, cwd=workdir, log_path=workdir / "discover.log",
        timeout_s=DISCOVERY_TIMEOUT_S, memory_limit_MB=DISCOVERY_MEMORY_MB,
    )
    reports: dict[str, dict] = {}
    if out.exists():
        for line in out.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "source" in rec:
                reports[rec["source"]["target"]] = rec
    why = outcome.reason or outcome.describe_exit(sandboxed)
    return reports, f"{why}: {outcome.log_tail[-500:]}"


def discover_models(submissions_dir: str | Path | None) -> list[ModelEntry]:
    """Every model of every plugin source, with failed sources and name clashes as error entries.

    A source that crashes or hangs the discovery worker is reported as failed and
    discovery goes on with the others in a fresh worker.
    """
    sources = find_sources(submissions_dir)
    reports: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="qsnmc-discover-") as tmp:
        pending = list(sources)
        while pending:
            got, log = _run_discovery(pending, Path(tmp))
            reports.update(got)
            pending = [s for s in pending if s.target not in reports]
            if pending:  # the first unreported source broke the worker
                bad = pending.pop(0)
                reports[bad.target] = {"models": [], "error": f"importing it stopped the worker ({log.strip()})"}
    by_name: dict[str, list[ModelEntry]] = {}
    failed: list[ModelEntry] = []
    for src in sources:
        rec = reports[src.target]
        if rec["error"]:
            failed.append(ModelEntry(_fallback_name(src), src, error=rec["error"]))
            continue
        for m in rec["models"]:
            version = m["version"] or (src.dist.split(" ")[-1] if src.dist else "")
            by_name.setdefault(m["name"], []).append(ModelEntry(m["name"], src, m["description"], version,
                                                                  param_grid=m.get("param_grid"),
                                                                  settings=m.get("settings"),
                                                                  typical_fit_s=m.get("typical_fit_s")))
    entries: list[ModelEntry] = []
    for name, group in by_name.items():
        if len(group) > 1:
            where = " and ".join(e.source.label for e in group)
            group[0].error = f"model name {name!r} is registered by {where}: rename one of them"
        entries.append(group[0])
    taken = {e.name for e in entries}
    for f in failed:  # keep names unique in the table without hiding the failure
        if f.name in taken:
            f.name = f"{f.name}[{f.source.kind}]"
        taken.add(f.name)
        entries.append(f)
    return entries
