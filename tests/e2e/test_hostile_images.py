"""Hostile images through the real stack over real gRPC: each is INVALID_ARGUMENT with a short
message naming the problem, whatever the decoder would have made of it."""

import grpc
import pytest
from PIL import Image

from tests.conftest import png, tag_request
from tests.e2e.conftest import MAX_IMAGE_BYTES
from tests.e2e.hostile import AUTH, encode, refused
from tests.hostile_images import many_scan_jpeg, other_formats

pytestmark = pytest.mark.e2e


def _corrupted() -> bytes:
    data = bytearray(png(200, 200))
    data[60] ^= 0xFF  # inside the first data chunk: its checksum no longer matches
    return bytes(data)


IMAGES = {
    "empty": (b"\0", "not a decodable image"),
    "junk bytes": (b"hello, not an image", "not a decodable image"),
    "truncated png": (png(200, 200)[:100], "not a decodable image"),
    "corrupted checksum": (_corrupted(), "not a decodable image"),
    "1x400000 strip": (encode(Image.new("1", (1, 400_000))), "times the shorter"),
    "1x1003520 strip": (encode(Image.new("1", (1, 1_003_520))), "times the shorter"),
    "400000x1 strip": (encode(Image.new("1", (400_000, 1))), "times the shorter"),
    "60 Mpx decompression bomb": (encode(Image.new("1", (12_000, 5_000))), "pixels"),
    "over the byte limit": (b"\x89PNG" + b"\0" * (MAX_IMAGE_BYTES + 1), "bytes"),
    "gif bomb": (encode(Image.new("P", (7_000, 7_000)), "GIF"), "pixels"),
    # Formats beyond the documented six (EPS would reach Ghostscript): refused on their first bytes.
    **{f"{fmt} file": (data, "no format this server reads") for fmt, data in other_formats().items()},
    "progressive JPEG of 2000 scans": (many_scan_jpeg(2000), "more than 32 scans"),
}


@pytest.mark.parametrize("case", list(IMAGES))
def test_hostile_images_are_invalid_argument(api, case):
    content, message = IMAGES[case]
    error = refused(api.Tag, tag_request(content), timeout=60, metadata=AUTH)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.details()
