"""A tagger that runs the model in this process: bulk work and experiments without a stack."""

from __future__ import annotations

from tagllm.bulk.annotate import PerImageTagger, TagFailure, read_image
from tagllm.bulk.sources import Item
from tagllm.imaging import ImageRejected, normalize_image
from tagllm.mllm.contract import MLLM, MLLMError
from tagllm.strategies import StrategyOptions, TagResult, tag_image
from tagllm.vocab import Vocabulary


class LocalTagger(PerImageTagger):
    """Tags with `mllm` directly, normalising images as the gateway does."""

    def __init__(self, mllm: MLLM, vocabulary: Vocabulary, options: StrategyOptions) -> None:
        self.mllm = mllm
        self.vocabulary = vocabulary
        self.options = options

    def tag(self, item: Item, reference: list[str] | None) -> TagResult:
        try:
            image = normalize_image(read_image(item)).png
        except ImageRejected as exc:
            raise TagFailure("INVALID_ARGUMENT", f"image: {exc}", retryable=False) from None
        try:
            return tag_image(image, self.vocabulary, self.options, self.mllm)
        except MLLMError as exc:
            raise TagFailure(exc.kind.name, str(exc), retryable=exc.retryable) from None
