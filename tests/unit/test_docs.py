"""The documentation names only what exists: every repository path, link and anchor it gives, every
`make` target, every `tagllm` command line of its code blocks (parsed by the real CLI parser) and
every name its Python examples import."""

from __future__ import annotations

import ast
import importlib
import re
import shlex
from pathlib import Path

import pytest

from tagllm.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [ROOT / "README.md", ROOT / "ARCHITECTURE.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")]
)
# The folders a path must start with to be read as a path of this repository (not `RUN/...` or
# `runs/...`, which a command writes).
TOP_LEVEL = {".ci", "deploy", "docs", "protos", "scripts", "services", "tagllm", "tests"}
# Generated from the settings models, and kept current by its own test.
CODE_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\s]+)`")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def code_blocks(page: Path, *languages: str) -> list[str]:
    return [body for lang, body in CODE_BLOCK.findall(page.read_text()) if lang in languages]


def prose(page: Path) -> str:
    return CODE_BLOCK.sub("", page.read_text())


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in prose(page).splitlines() if line.startswith("#")}


def repository_paths(page: Path) -> set[str]:
    found = set()
    for token in CODE_SPAN.findall(prose(page)):
        token = token.rstrip(".,;:)")
        if token.split("/")[0] in TOP_LEVEL and "/" in token and not re.search(r"[*{<]|\.\.\.", token):
            found.add(token.rstrip("/"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_repository_path_a_page_names_exists(page):
    missing = sorted(p for p in repository_paths(page) if not (ROOT / p).exists())
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_link_leads_to_a_page_and_heading_that_exist(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and anchor not in anchors(linked)):
            broken.append(target)
    assert broken == []


def tagllm_command_lines(page: Path) -> list[list[str]]:
    """The arguments of each `tagllm` command line, a loop's variable read as its first value."""
    commands = []
    for block in code_blocks(page, "bash", "sh", ""):
        loop_values: dict[str, str] = {}
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            loop = re.match(r"for (\w+) in (\S+)", line)
            if loop:
                loop_values[loop.group(1)] = loop.group(2)
            if not line.startswith("tagllm "):
                continue
            line = re.sub(r"\$\([^)]*\)", "OUT", line)  # a command substitution is one word
            for name, value in loop_values.items():
                line = line.replace(f"${name}", value)
            line = re.sub(r"\[[^\]]*\]", "", line)  # [--optional flags]
            words = shlex.split(line, comments=True)
            commands.append(words[1:-1] if words[-1] == "&" else words[1:])
    return commands


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_tagllm_command_line_parses(page):
    parser = build_parser()
    refused = []
    for arguments in tagllm_command_lines(page):
        try:
            parser.parse_args(arguments)
        except SystemExit:
            refused.append(shlex.join(arguments))
    assert refused == []


def test_the_command_check_refuses_a_flag_the_cli_does_not_have():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["annotate", "images/", "--out", "run", "--no-such-flag"])


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_make_target_a_page_names_exists(page):
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)`", page.read_text()))
    for block in code_blocks(page, "bash", "sh", ""):
        named |= set(re.findall(r"^make ([a-z][\w-]*)", block, re.M))
    assert named - targets == set()


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_name_a_python_example_imports_exists(page):
    missing = []
    for block in code_blocks(page, "python"):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = importlib.import_module(node.module)
                missing += [f"{node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)]
    assert missing == []


def test_readme_stays_a_front_door():
    # What it is, the two commands, using it, links; the rest is in docs/.
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
