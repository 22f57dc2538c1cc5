"""Settings of a service process: a pydantic-settings model read from environment variables.

A field `foo_bar` of a model whose prefix is `TAGLLM_GATEWAY_` is the variable
`TAGLLM_GATEWAY_FOO_BAR`. `load_settings` reads them once at start-up (nothing else reads the
environment); `to_env` writes a model back as the variables that reproduce it, which is how
`tagllm up` configures its children. Each field has a description (docs/configuration.md is
generated from them) and its bounds.

Unknown variables with a service's prefix are ignored, not refused: Kubernetes adds variables
such as `TAGLLM_GATEWAY_SERVICE_HOST` for every Service. Unknown names given in code are refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

# Messages of cross-field checks name a variable as "..._NAME"; the prefix is put in when read.
PREFIX_PLACEHOLDER = "..._"
MAX_SHOWN_INPUT = 80


class SettingsError(ValueError):
    """A setting is missing, malformed or out of bounds: one line that names the variable."""


class ServiceSettings(BaseSettings):
    """A service's settings; subclasses set `env_prefix` in their `model_config`."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Constructed in code, a model holds what it is given; `load_settings` reads the environment.
        return (init_settings,)

    @classmethod
    def env_prefix(cls) -> str:
        return cls.model_config.get("env_prefix") or ""

    @classmethod
    def env_name(cls, field: str) -> str:
        return cls.env_prefix() + field.upper()

    def to_env(self) -> dict[str, str]:
        """The variables of the fields given explicitly (the others keep their defaults, or what
        the child's inherited environment says), in the form `load_settings` reads."""
        return {self.env_name(name): _env_text(getattr(self, name)) for name in sorted(self.model_fields_set)}


T = TypeVar("T", bound=ServiceSettings)


def _env_text(value: Any) -> str:
    if value is None:  # an optional file not given: empty, as a variable set to nothing reads
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source (its parsing and decoding) over a given mapping."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str], prefix: str) -> None:
        super().__init__(settings_cls, env_prefix=prefix, case_sensitive=False)
        self.env_vars = {name.lower(): value for name, value in environ.items()}


def load_settings(
    cls: type[T], prefix: str | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> T:
    """`cls` from the variables with `prefix` (the model's own by default) in `environ` (the process
    environment by default), `overrides` winning; SettingsError, one line, when they do not hold."""
    prefix = cls.env_prefix() if prefix is None else prefix
    values = _MappingSource(cls, os.environ if environ is None else environ, prefix)()
    try:
        return cls(**{**values, **overrides})
    except ValidationError as exc:
        raise SettingsError(one_line(exc, prefix)) from None


def one_line(error: ValidationError, prefix: str) -> str:
    """Every problem of `error` on one line, each naming its variable."""
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ").replace(PREFIX_PLACEHOLDER, prefix)
        if not item["loc"]:  # a check across fields names its variables itself
            problems.append(message)
            continue
        name = prefix + str(item["loc"][0]).upper()
        if item["type"] == "extra_forbidden":
            problems.append(f"{name}: no such setting")
            continue
        shown = repr(item["input"])
        if len(shown) > MAX_SHOWN_INPUT:
            shown = shown[:MAX_SHOWN_INPUT] + "..."
        problems.append(f"{name}={shown}: {message[:1].lower()}{message[1:]}")
    return "; ".join(problems)
