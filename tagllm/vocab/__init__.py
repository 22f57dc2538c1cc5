"""Vocabularies: categories with concept knowledge, and the groups that partition them."""

from tagllm.vocab.model import Category, Group, Vocabulary, VocabularyError
from tagllm.vocab.registry import VocabularyRegistry, builtin_names, builtin_vocabulary, named_vocabulary
from tagllm.vocab.validation import load_vocabulary, parse_vocabulary

__all__ = [
    "Category",
    "Group",
    "Vocabulary",
    "VocabularyError",
    "VocabularyRegistry",
    "builtin_names",
    "builtin_vocabulary",
    "load_vocabulary",
    "named_vocabulary",
    "parse_vocabulary",
]
