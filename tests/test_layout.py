"""The package's layers, checked from the source: lower layers never import higher ones,
built-in plugins use only the declared plugin API, as a third-party plugin would, and no
function is longer than MAX_FUNCTION_LINES."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import qsnmc

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "qsnmc"

#: which qsnmc subpackages each layer may import (the base modules at the top are always allowed)
ALLOWED = {
    "base": set(),
    "scoring": {"scoring", "challenges"},  # evaluation reads a Challenge's hidden test
    "challenges": {"challenges", "scoring"},
    "fitting": {"fitting", "scoring"},  # the plugins' toolkit: objectives and records over held-out scores
    "harness": {"harness", "challenges", "scoring", "fitting"},
    "cli": {"cli", "harness", "challenges", "scoring", "fitting"},
    "testing": {"testing", "harness", "challenges", "scoring", "fitting"},  # plugin authors' conformance checks
}
LAYERS = {"scoring", "challenges", "fitting", "harness", "cli", "testing"}
#: the longest function (def line to last line, docstring included) allowed in qsnmc/ and qsnmc_plugins/
MAX_FUNCTION_LINES = 80


def _imports(path: Path) -> set[str]:
    """Every absolute module name a file imports (at any depth: lazy imports count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _layer(path: Path) -> str:
    rel = path.relative_to(CORE)
    return rel.parts[0] if len(rel.parts) > 1 else "base"


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_higher_layer(path):
    layer = _layer(path)
    if path == CORE / "__init__.py":
        return  # the package root re-exports the plugin API from every layer but the CLI
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] != "qsnmc" or len(parts) < 2 or parts[1] not in LAYERS:
            continue
        assert parts[1] in ALLOWED[layer], f"{path.relative_to(ROOT)} ({layer}) imports {name}"


def test_the_package_root_does_not_import_the_cli():
    assert not any(n.startswith("qsnmc.cli") for n in _imports(CORE / "__init__.py"))


def test_builtin_plugins_use_only_the_declared_api():
    for path in sorted((ROOT / "qsnmc_plugins").rglob("*.py")):
        for name in _imports(path):
            assert name == "qsnmc" or not name.startswith("qsnmc."), f"{path.relative_to(ROOT)} imports {name}"
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "qsnmc":
                missing = [a.name for a in node.names if a.name not in qsnmc.__all__]
                assert not missing, f"{path.relative_to(ROOT)} imports undeclared {missing} from qsnmc"


def documentation() -> dict[str, str]:
    """The README and every page under docs/, by path relative to the root."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return {str(p.relative_to(ROOT)): p.read_text() for p in pages}


def test_the_declared_api_is_importable_and_documented():
    for name in qsnmc.__all__:
        assert hasattr(qsnmc, name), name
    docs = "\n".join(documentation().values())
    for name in qsnmc.__all__:
        if name != "__version__":
            assert f"`{name}" in docs or f"qsnmc.{name}" in docs, f"neither README nor docs/ document qsnmc.{name}"


def _python_blocks(text: str) -> list[str]:
    """The ```python code blocks of a Markdown text."""
    blocks, rest = [], text
    while "```python\n" in rest:
        rest = rest[rest.index("```python\n") + len("```python\n"):]
        blocks.append(rest[:rest.index("```\n")])
        rest = rest[rest.index("```\n"):]
    return blocks


def _documented_examples() -> list[str]:
    """The code blocks of the README and docs/ that show the example submission's model."""
    return [b for text in documentation().values() for b in _python_blocks(text) if "class ExampleThreshold(" in b]


def test_the_docs_show_the_example_submission_as_it_is():
    """Every code block of the README or docs/ that shows the example's model is the example
    file's code, line for line."""
    blocks = _documented_examples()
    example = (ROOT / "submissions" / "example_threshold.py").read_text()
    assert blocks, "no page of the README or docs/ shows the example submission"
    for block in blocks:
        assert block.strip() and block in example


def _api_tables() -> str:
    """The section headed "The plugin API" (to the next heading of its level), wherever it is."""
    for text in documentation().values():
        for level in ("## ", "### "):
            heading = f"\n{level}The plugin API\n"
            if heading in text:
                section = text[text.index(heading) + len(heading):]
                return section[:section.index(f"\n{level}")] if f"\n{level}" in section else section
    raise AssertionError("no page of the README or docs/ has a section 'The plugin API'")


#: the documented example's variables, by what they hold (each documented in the plugin-API table by that name)
EXAMPLE_VARIABLES = ("train", "stim", "stimulus")


def test_the_api_table_lists_every_name_the_documented_example_uses():
    """Every `qsnmc.X`, name imported from qsnmc, `train.X`, `stim.X` and `stimulus.X` of the
    documented example, and every member its model class defines, is in the plugin-API table."""
    table = _api_tables()
    example = ast.parse((ROOT / "submissions" / "example_threshold.py").read_text())
    from_qsnmc = {a.asname or a.name: a.name for node in ast.walk(example)
                  if isinstance(node, ast.ImportFrom) and node.module == "qsnmc" for a in node.names}
    used = set()
    for node in ast.walk(ast.parse("\n".join(_documented_examples()))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "qsnmc" or node.value.id in EXAMPLE_VARIABLES:
                used.add(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in from_qsnmc:
            used.add(f"qsnmc.{from_qsnmc[node.id]}")
        elif isinstance(node, ast.ClassDef) and any(ast.unparse(b) in ("qsnmc.Model", "Model") for b in node.bases):
            # the model's members: name, description, param_grid, Settings, fit, ... (not its settings' fields)
            for item in node.body:
                targets = item.targets if isinstance(item, ast.Assign) else [getattr(item, "target", None)]
                used.update(f"Model.{t.id}" for t in targets if isinstance(t, ast.Name))
                if isinstance(item, ast.FunctionDef):
                    used.add(f"Model.{item.name}")
    assert {"train.time_split", "qsnmc.fit_record", "Model.Settings", "Model.fit"} <= used  # the parse works

    def listed(name: str) -> bool:
        member = name.removeprefix("Model.")
        forms = [f"`{name}`", f"`{name}("] if member == name else [f"`{member}`", f"`{member}(", f"`{name}`"]
        return any(form in table for form in forms)

    missing = sorted(n for n in used if not listed(n))
    assert not missing, f"the plugin-API table does not list {missing}, which the documented example uses"


def test_no_function_is_longer_than_the_limit():
    lengths = {}
    for path in sorted([*CORE.rglob("*.py"), *(ROOT / "qsnmc_plugins").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lengths[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = node.end_lineno - node.lineno + 1
    assert len(lengths) > 100  # the scan found the package's functions
    long = sorted(f"{where} ({n} lines)" for where, n in lengths.items() if n > MAX_FUNCTION_LINES)
    assert not long, f"functions longer than {MAX_FUNCTION_LINES} lines (split them into helpers): {long}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the modules of qsnmc/ and qsnmc_plugins/ it imports (lazy imports too); ``from P
    import name`` counts as importing ``P.name`` where that is a module, else ``P``."""
    paths = sorted([*CORE.rglob("*.py"), *(ROOT / "qsnmc_plugins").rglob("*.py")])
    modules = {_module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for a in node.names:
                    edges.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def _import_cycles() -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph, index, low, stack, on_stack, cycles = _import_graph(), {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_import_graph_is_read():
    graph = _import_graph()
    assert "qsnmc.challenges.store" in graph["qsnmc.challenges.qsnmc2007"]  # the scan sees imports
    assert "qsnmc_plugins.mat.settings" in graph["qsnmc_plugins.mat.model"]


def test_no_import_cycle_inside_the_packages():
    """No module of qsnmc/ or qsnmc_plugins/ imports itself through others (lazy imports count)."""
    cycles = [sorted(c) for c in _import_cycles()]
    assert not cycles, f"import cycles: {cycles}"
