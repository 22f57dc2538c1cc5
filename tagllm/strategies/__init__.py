"""Tagging strategies: TagLLM and the baselines, behind one interface."""

from tagllm.strategies.base import (
    Label,
    Provenance,
    StageTiming,
    StrategyName,
    StrategyOptions,
    TagResult,
    Usage,
    Verdict,
    VersionInfo,
)
from tagllm.strategies.implementations import STRATEGIES, tag_image

__all__ = [
    "STRATEGIES",
    "Label",
    "Provenance",
    "StageTiming",
    "StrategyName",
    "StrategyOptions",
    "TagResult",
    "Usage",
    "Verdict",
    "VersionInfo",
    "tag_image",
]
