"""Image-only processors for checkpoints whose stock processor demands a video processor.

The stock Qwen2-VL/Qwen2.5-VL processors require a video processor, which needs torchvision;
torchvision has no CPU build for our torch. These subclasses take only an image processor and
a tokenizer. Their `__init__` names its arguments explicitly: transformers derives the saved
attributes from that signature, and with `**kwargs` alone the chat template is dropped on reload.
"""

from __future__ import annotations

from transformers import AutoProcessor
from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLConfig
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.processing_utils import ProcessorMixin


class Qwen2_5_VLImageProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor without the video branch."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


_registered = False


def register_processors() -> None:
    """Make the image-only processors resolvable by `AutoProcessor` (idempotent)."""
    global _registered
    if _registered:
        return
    AutoProcessor.register(Qwen2_5_VLConfig, Qwen2_5_VLImageProcessor, exist_ok=True)
    _registered = True
