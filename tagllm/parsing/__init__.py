"""Turning model answers into vocabulary labels."""

from tagllm.parsing.answers import AnswerParser, ParsedAnswer, indistinct_names

__all__ = ["AnswerParser", "ParsedAnswer", "indistinct_names"]
