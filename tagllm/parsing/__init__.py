"""Turning model answers into vocabulary labels."""

from tagllm.parsing.answers import AnswerParser, ParsedAnswer

__all__ = ["AnswerParser", "ParsedAnswer"]
