"""The package's optional parts (the extras of pyproject.toml, read from the installed package's
metadata) and the one-line error of a command that needs one that is not installed."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import re
from collections.abc import Mapping

PACKAGE = "tagllm"
# "name[extras]...; extra == "server"" in the package's Requires-Dist
_REQUIREMENT = re.compile(r'^\s*([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?[^;]*;.*\bextra\s*==\s*"([^"]+)"')


class ExtraMissing(RuntimeError):
    """A command needs an extra that is not installed; the message says what to install."""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(extra: str) -> list[str]:
    """The distributions `extra` adds (with those of the extras it names); [] when the package
    itself is not installed (a source tree on PYTHONPATH), where nothing can be told."""
    try:
        requires = metadata.requires(PACKAGE) or []
    except metadata.PackageNotFoundError:
        return []
    by_extra: dict[str, list[tuple[str, list[str]]]] = {}
    for line in requires:
        match = _REQUIREMENT.match(line)
        if match:
            name, extras, owner = match.groups()
            by_extra.setdefault(owner, []).append((name, [e.strip() for e in (extras or "").split(",") if e]))
    found, pending, seen = [], [extra], set()
    while pending:
        current = pending.pop()
        seen.add(current)
        for name, extras in by_extra.get(current, []):
            if _normal(name) == PACKAGE:
                pending += [e for e in extras if e not in seen]
            elif name not in found:
                found.append(name)
    return found


def _installed(distribution: str, modules_of: Mapping[str, list[str]]) -> bool:
    modules = [m for m, owners in modules_of.items() if _normal(distribution) in map(_normal, owners)]
    try:
        return bool(modules) and all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):
        return False


def require(extra: str, command: str) -> None:
    """ExtraMissing, naming what is absent and the install that brings it, unless every
    distribution of `extra` can be imported."""
    needed = distributions(extra)
    if not needed:
        return
    modules_of = metadata.packages_distributions()
    absent = [name for name in needed if not _installed(name, modules_of)]
    if absent:
        raise ExtraMissing(
            f"{command} needs the {extra!r} extra ({', '.join(absent)} not installed): "
            f"pip install '{PACKAGE}[{extra}]'"
        )
