"""Writes docs/configuration.md from the settings models (tagllm/settings/) and the table of
default ports (tagllm/ports.py). A test fails when the committed page differs from this output:
after changing a setting, run `python scripts/gen_config_docs.py`."""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path

import annotated_types
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tagllm import ports  # noqa: E402
from tagllm.cli.options import API_KEY_VARIABLE  # noqa: E402
from tagllm.mllm.default_model import HOME_ENV, MODEL_DIR_ENV  # noqa: E402
from tagllm.resources import RESOURCES_ENV  # noqa: E402
from tagllm.settings import SERVICES, GrpcSettings  # noqa: E402

PAGE = ROOT / "docs" / "configuration.md"
TITLES = {"gateway": "Gateway", "refiner": "Refiner", "metrics": "Metrics service"}
# What the `tagllm` command itself reads (the services read only their own prefixes).
COMMAND_VARIABLES = {
    MODEL_DIR_ENV: (
        "the demo model",
        "checkpoint that `tagllm up` and `tagllm model serve` serve as model `mllm`",
    ),
    HOME_ENV: (
        "`~/.cache/tagllm`",
        "where a tiny random checkpoint is kept when the package has no demo model",
    ),
    RESOURCES_ENV: (
        "the folder holding the `tagllm` package",
        "where `tagllm up` finds `services/triton/model_repository` and `deploy/prometheus/rules` (an "
        "installed wheel has the first only: point this at a checkout for `--prometheus`)",
    ),
    API_KEY_VARIABLE: ("(none)", "the API key the client commands send, when `--api-key` is not given"),
    API_KEY_VARIABLE + "_FILE": ("(none)", f"a file holding that key (when `{API_KEY_VARIABLE}` is not set)"),
}


def default_text(field: FieldInfo) -> str:
    value = field.default
    if value in ("", (), None):
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def bounds_text(field: FieldInfo) -> str:
    if typing.get_origin(field.annotation) is typing.Literal:
        return " or ".join(f"`{choice}`" for choice in typing.get_args(field.annotation))
    signs = {
        annotated_types.Ge: ">=",
        annotated_types.Gt: ">",
        annotated_types.Le: "<=",
        annotated_types.Lt: "<",
    }
    limits = [
        f"{sign} {getattr(item, kind.__name__.lower())}"
        for item in field.metadata
        for kind, sign in signs.items()
        if isinstance(item, kind)
    ]
    if limits:
        return ", ".join(limits)
    kind = field.annotation
    if isinstance(kind, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    return {bool: "true or false", tuple: "comma-separated"}.get(typing.get_origin(kind) or kind, "")


def rows(fields: dict[str, FieldInfo], name_of) -> list[str]:
    lines = ["| variable | default | values | meaning |", "|---|---|---|---|"]
    for field_name, field in fields.items():
        if not field.description:
            raise SystemExit(f"setting {field_name} has no description")
        cells = (f"`{name_of(field_name)}`", default_text(field), bounds_text(field), field.description)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def page() -> str:
    shared = GrpcSettings.model_fields
    prefixes = ", ".join(f"`{settings.env_prefix()}`" for settings, _ in SERVICES.values())
    out = [
        "# Configuration",
        "",
        "<!-- Generated from tagllm/settings/ and tagllm/ports.py by scripts/gen_config_docs.py -->",
        "",
        "Each service reads environment variables with its own prefix, once at start-up. A value that is",
        "malformed or out of bounds stops the service with one line that names the variable. `tagllm up`",
        "sets the ports and the addresses of the services for you; variables with a service's prefix",
        "that name no setting are ignored (Kubernetes adds some for every Service).",
        "",
        "## Every service",
        "",
        f"Each of these follows a service's prefix ({prefixes}): `TAGLLM_GATEWAY_PORT`, say.",
        "",
        *rows(shared, lambda name: name.upper()),
    ]
    for service, (settings, module) in SERVICES.items():
        own = {
            name: field
            for name, field in settings.model_fields.items()
            if name not in shared or field.default != shared[name].default
        }
        out += [
            "",
            f"## {TITLES[service]} (`python -m {module}`)",
            "",
            "Its own settings, and the shared ones whose default differs here.",
            "",
            *rows(own, settings.env_name),
        ]
    out += [
        "",
        "## The `tagllm` command",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
        *(f"| `{name}` | {default} | {meaning} |" for name, (default, meaning) in COMMAND_VARIABLES.items()),
        "",
        "## Default ports",
        "",
        "`tagllm up` listens on these; each has its flag.",
        "",
        "| flag | port | what listens |",
        "|---|---|---|",
        *(
            f"| `--{field.replace('_', '-')}` | {port} | {listener} |"
            for field, (port, listener) in ports.STACK_PORTS.items()
        ),
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=PAGE, help="where to write the page (default: %(default)s)"
    )
    args = parser.parse_args()
    args.out.write_text(page(), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
