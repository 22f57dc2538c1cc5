"""What the hostile-input suites share: the API key, the bound on status messages, and another
in-process gateway before the session's refiner."""

import io

import grpc
import pytest
from PIL import Image

from tests.conftest import in_process_gateway

# No status message may carry more than this (they echo at most a short prefix of the input).
MAX_MESSAGE = 1200
KEY = "hostile-suite-key"
AUTH = [("authorization", f"Bearer {KEY}")]


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def keyed_gateway(stack, **settings):
    """Another in-process gateway before the session's refiner, with its own settings (keys and
    no cache unless told otherwise); its address once it says SERVING."""
    return in_process_gateway(
        stack.settings.refiner_address, **{"api_keys": (KEY, "other-key"), "cache_entries": 0, **settings}
    )


def refused(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    assert len(caught.value.details() or "") <= MAX_MESSAGE
    return caught.value
