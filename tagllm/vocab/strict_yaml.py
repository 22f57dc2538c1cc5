"""YAML from untrusted hands: bounded before anything is built, and exact about what it holds.

Refused, each with a message that says where: more than `max_bytes`; aliases (a few hundred
bytes of them expand into gigabytes); nesting deeper than `max_depth` (PyYAML builds nested
values recursively); numbers longer than `MAX_NUMBER_CHARS` characters (a number of thousands
of digits costs time to convert and is nobody's version or threshold); a key given twice in one
mapping (PyYAML keeps the last silently). The event pass that checks all this runs on PyYAML's
iterative parser, so it never recurses whatever the input.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_NUMBER_CHARS = 32
# What YAML 1.1 (PyYAML's SafeLoader) reads as an int or a float from a plain scalar.
_NUMBER = re.compile(
    r"[-+]?(?:[0-9_.]+(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|0o?[0-7_]+|[0-9][0-9_]*(?::[0-5]?[0-9])+)"
)


class StrictYamlError(ValueError):
    """The text breaks a bound or is not valid YAML; the message says which and where."""


def _where(mark) -> str:
    return f"line {mark.line + 1}" if mark is not None else "?"


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor reports it
                continue
            if duplicate:
                raise StrictYamlError(f"{_where(key_node.start_mark)}: key {str(key)[:64]!r} is given twice")
        return super().construct_mapping(node, deep=deep)


def load_strict_yaml(text: str, max_bytes: int, max_depth: int) -> Any:
    """The value of `text`, or StrictYamlError."""
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise StrictYamlError(f"larger than {max_bytes} bytes")
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise StrictYamlError(f"{_where(event.start_mark)}: YAML aliases (*name) are not allowed")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise StrictYamlError(
                        f"{_where(event.start_mark)}: nested deeper than {max_depth} levels"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif (
                isinstance(event, yaml.ScalarEvent)
                and event.implicit[0]  # plain, untagged: YAML decides its type
                and len(event.value) > MAX_NUMBER_CHARS
                and _NUMBER.fullmatch(event.value)
            ):
                raise StrictYamlError(
                    f"{_where(event.start_mark)}: a number of {len(event.value)} characters; "
                    f"at most {MAX_NUMBER_CHARS} (quote it if it is text)"
                )
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except StrictYamlError:
        raise
    except yaml.YAMLError as exc:
        raise StrictYamlError(f"not valid YAML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a value PyYAML cannot construct
        raise StrictYamlError(f"not valid YAML: {type(exc).__name__}: {str(exc)[:200]}") from None
