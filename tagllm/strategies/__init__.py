"""Tagging strategies: TagLLM and the baselines, behind one interface and one registry."""

# Importing the implementations registers them.
from tagllm.strategies import implementations as _implementations  # noqa: F401
from tagllm.strategies.base import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    Label,
    Provenance,
    Run,
    StageTiming,
    Strategy,
    StrategyOptions,
    TagResult,
    Usage,
    Verdict,
    Verification,
    VersionInfo,
    check_options,
    register,
    tag_image,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Label",
    "Provenance",
    "Run",
    "StageTiming",
    "Strategy",
    "StrategyOptions",
    "TagResult",
    "Usage",
    "Verdict",
    "Verification",
    "VersionInfo",
    "check_options",
    "register",
    "tag_image",
]
