"""The README and the pages under docs/ stay true to the code and to each other: every command
they show parses with the real CLI parser, every option of the CLI is documented, every link
resolves (anchors included), every docs page is one click from the README, the README stays
a front door (its set-up block as CI reads it, at most README_MAX_LINES lines), its cheap first try
runs and scores as its results say, and the models table lists exactly the models in the code."""
from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
from conftest import read_rows, run_cli

from qsnmc.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: the README is the front door; reference material goes to docs/
README_MAX_LINES = 250


def pages() -> list[Path]:
    """The README and every Markdown page under docs/."""
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block of a Markdown text."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)


def prose(text: str) -> str:
    """A Markdown text without its fenced code blocks."""
    return re.sub(r"^```\w*\n.*?^```", "", text, flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group() == "_" else "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+)$", prose(text), flags=re.M):
        base = slug(heading)
        seen[base] = seen.get(base, -1) + 1
        if seen[base]:
            seen[f"{base}-{seen[base]}"] = 0
    return set(seen)


def links(text: str) -> list[str]:
    """The targets of the Markdown links in a text's prose (code blocks left out)."""
    return re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose(text))


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move reference material to docs/")


def test_the_set_up_block_holds_the_two_commands_ci_runs():
    """.ci/run runs the first ```bash block after "## Set-up", one command a line, and wants two."""
    text = README.read_text()
    section = text[text.index("\n## Set-up\n"):]
    block = section[section.index("```bash\n") + len("```bash\n"):]
    commands = [line for line in block[:block.index("```")].splitlines() if line.strip()]
    assert commands == ['pip install -e ".[test]" && qsnmc run --all', "python -m pytest -q"]


@pytest.mark.parametrize("page", pages(), ids=_name)
def test_every_link_resolves(page):
    text = page.read_text()
    broken = []
    for target in links(text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{_name(page)}: {broken}"


def test_every_docs_page_is_one_click_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(README.read_text())}
    unlinked = [_name(p) for p in pages()[1:] if p.resolve() not in linked]
    assert not unlinked, f"the README links no path to {unlinked}"


def _parse(words: list[str]) -> str | None:
    """None if the qsnmc parser accepts these words, else its error message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(words)
    except SystemExit as exc:
        if exc.code:
            return err.getvalue().strip().splitlines()[-1]
    return None


def documented_command_lines() -> list[tuple[str, str]]:
    """(page, line) for every `qsnmc ...` command line in a code block of the README or docs/
    (a `$ ` prompt and a trailing `# comment` dropped, optional [parts] kept without brackets)."""
    found = []
    for page in pages():
        for language, body in fenced_blocks(page.read_text()):
            if language in ("python", "toml"):
                continue
            for line in body.splitlines():
                line = line.removeprefix("$ ")
                if line.startswith("qsnmc "):
                    found.append((_name(page), re.sub(r"[\[\]]", "", line.split(" #")[0]).strip()))
    return found


def test_the_docs_show_commands():
    commands = [line for _, line in documented_command_lines()]
    assert len(commands) > 20 and "qsnmc run lif poisson example-threshold" in commands


@pytest.mark.parametrize("page,line", documented_command_lines())
def test_every_documented_command_parses(page, line):
    error = _parse(shlex.split(line)[1:])
    assert error is None, f"{page}: `{line}`: {error}"


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) for the parser and every subcommand's, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_command_in_the_prose_exists_with_its_options():
    """`qsnmc COMMAND ... --option` spans in the text name a real (sub)command and its options."""
    commands = dict(_parsers(build_parser()))
    wrong = []
    for page in pages():
        for span in re.findall(r"`qsnmc ([^`]*)`", prose(page.read_text())):
            words = span.split()
            path: tuple[str, ...] = ()
            while words and (*path, words[0]) in commands:
                path = (*path, words.pop(0))
            if words and words[0].islower() and not words[0].startswith("-") and path in ((), ("data",)):
                wrong.append(f"{_name(page)}: `qsnmc {span}`: no command {words[0]!r}")
            options = {o for a in commands[path]._actions for o in a.option_strings}
            wrong += [f"{_name(page)}: `qsnmc {span}`: no option {w}" for w in words
                      if w.startswith("--") and w.split("=")[0] not in options]
    assert not wrong, wrong


def test_every_option_is_documented():
    text = "\n".join(p.read_text() for p in pages())
    missing = [f"qsnmc {' '.join(path)} {option}".replace("  ", " ")
               for path, parser in _parsers(build_parser())
               for action in parser._actions for option in action.option_strings
               if option not in ("-h", "--help") and not re.search(re.escape(option) + r"(?![\w-])", text)]
    assert not missing, f"options that neither the README nor docs/ mention: {missing}"


def test_the_readmes_first_try_runs_and_scores_as_its_results_say(embedded_challenge, tmp_path):
    """The Set-up's cheap first try, run as written (a real subprocess, sandboxed where bubblewrap
    is), ranks its three models with the seed-0 figures the README's results give for them."""
    text = README.read_text()
    setup = text[text.index("\n## Set-up\n"):text.index("```bash")]
    first_try = re.search(r"`(qsnmc run [^`]*)`", setup).group(1)
    rows_path = tmp_path / "rows.json"
    proc = run_cli([*shlex.split(first_try)[1:], "--runs-dir", str(tmp_path / "runs"), "--json", str(rows_path),
                    "--quiet"], cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    seed0 = re.search(r"`qsnmc run --all` \(seed 0 only[^)]*\) gives[^:]*:(.*?)\n\n", text, flags=re.S).group(1)
    readme_p = {m: float(p.replace("−", "-")) for m, p in re.findall(r"([a-z-]+) (−?\d+\.\d)", seed0)}
    rows = read_rows(rows_path)
    assert set(rows) == set(shlex.split(first_try)[2:])
    for model, row in rows.items():
        assert round(100 * row["performance"], 1) == readme_p[model], (model, row["performance"])


def model_names_in_code() -> set[str]:
    """The `name` of every model class in qsnmc_plugins/ and submissions/ (read from the source)."""
    names = set()
    for path in [*(ROOT / "qsnmc_plugins").rglob("*.py"), *(ROOT / "submissions").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names.update(item.value.value for item in node.body if isinstance(item, ast.Assign)
                             and [ast.unparse(t) for t in item.targets] == ["name"]
                             and isinstance(item.value, ast.Constant))
    return names


def table_column(text: str, header: str, column: str) -> list[str]:
    """The cells of one column of every Markdown table whose header row starts with ``header``."""
    cells = []
    for table in re.findall(rf"^({re.escape(header)}.*\n(?:\|.*\n)+)", text, flags=re.M):
        rows = [[c.strip() for c in row.strip().strip("|").split("|")] for row in table.splitlines()]
        index = rows[0].index(column)
        cells += [row[index].strip("`") for row in rows[2:]]
    return cells


def test_the_models_table_lists_every_model_and_the_results_only_real_ones():
    in_code = model_names_in_code()
    assert {"lif", "gru", "example-threshold"} <= in_code  # the scan finds classes
    docs = "\n".join(p.read_text() for p in pages())
    listed = table_column(docs, "| model | what it is |", "model")
    assert sorted(listed) == sorted(in_code), "the models table does not list exactly the models in the code"
    ranked = table_column(README.read_text(), "| rank | model |", "model")
    assert ranked and set(ranked) <= in_code, "a results table ranks a model the code lacks"
