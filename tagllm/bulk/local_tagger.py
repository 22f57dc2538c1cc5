"""A tagger that runs the model in this process: bulk work and experiments without a stack."""

from __future__ import annotations

from tagllm.bulk.annotate import TagFailure
from tagllm.bulk.sources import Item
from tagllm.datasets.images import MAX_IMAGE_FILE_BYTES
from tagllm.files import InputFileError, read_bytes
from tagllm.imaging import ImageRejected, normalize_image
from tagllm.mllm.contract import MLLM, MLLMError
from tagllm.strategies import StrategyOptions, TagResult, tag_image
from tagllm.vocab import Vocabulary


class LocalTagger:
    """Tags with `mllm` directly, normalising images as the gateway does."""

    def __init__(self, mllm: MLLM, vocabulary: Vocabulary, options: StrategyOptions) -> None:
        self.mllm = mllm
        self.vocabulary = vocabulary
        self.options = options

    def __call__(self, item: Item, reference: list[str] | None) -> TagResult:
        try:
            image = normalize_image(read_bytes(item.path, MAX_IMAGE_FILE_BYTES)).png
        except InputFileError as exc:
            raise TagFailure("UNREADABLE", str(exc), retryable=False) from None
        except ImageRejected as exc:
            raise TagFailure("INVALID_ARGUMENT", f"image: {exc}", retryable=False) from None
        try:
            return tag_image(image, self.vocabulary, self.options, self.mllm)
        except MLLMError as exc:
            raise TagFailure(exc.kind.name, str(exc), retryable=exc.retryable) from None
