"""Prompt wording for every prompt kind, in one place."""

from tagllm.prompts.templates import PromptKind, Prompts, sanitize

__all__ = ["PromptKind", "Prompts", "sanitize"]
