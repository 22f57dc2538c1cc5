"""Prompt wording for every prompt kind, in one place."""

from tagllm.prompts.templates import (
    BUILTIN_STYLES,
    DEFAULT_STYLE,
    PromptKind,
    Prompts,
    build_styles,
    sanitize,
)

__all__ = ["BUILTIN_STYLES", "DEFAULT_STYLE", "PromptKind", "Prompts", "build_styles", "sanitize"]
