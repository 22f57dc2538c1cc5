import io

import pytest
from PIL import Image

from tagllm.imaging import ImageLimits, ImageRejected, normalize_image
from tests.conftest import png


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def test_an_image_that_needs_no_change_is_forwarded_byte_for_byte():
    data = png(300, 200)
    result = normalize_image(data)
    assert result.png == data and (result.width, result.height) == (300, 200)
    jpeg = encode(Image.new("L", (64, 48), 120), "JPEG")
    assert normalize_image(jpeg).png == jpeg  # the model server converts modes itself


def test_changed_images_are_reencoded_as_png():
    result = normalize_image(png(2000, 1000), ImageLimits(model_pixels=100_000))
    assert result.png.startswith(b"\x89PNG")


def test_large_images_shrink_to_the_model_budget():
    result = normalize_image(png(2000, 1000), ImageLimits(model_pixels=100_000))
    assert result.width * result.height <= 100_000
    assert abs(result.width / result.height - 2.0) < 0.05


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (60, 30), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise
    result = normalize_image(encode(image, "JPEG", exif=exif))
    assert (result.width, result.height) == (30, 60)


@pytest.mark.parametrize(
    "data, limits, message",
    [
        (b"", ImageLimits(), "image is empty"),
        (b"hello, not an image", ImageLimits(), "not a decodable image"),
        (png(), ImageLimits(max_bytes=10), "the limit is 10 bytes"),
        (png(100, 100), ImageLimits(max_pixels=5000), "the limit is 5000 pixels"),
    ],
)
def test_rejections_say_which_limit(data, limits, message):
    with pytest.raises(ImageRejected, match=message):
        normalize_image(data, limits)


@pytest.mark.parametrize("width, height", [(1, 400_000), (1, 1_003_520), (400_000, 1), (5, 1000)])
def test_thin_strips_are_refused_from_their_header_before_any_upscale(width, height):
    strip = encode(Image.new("1", (width, height)))  # a few hundred bytes
    with pytest.raises(ImageRejected, match="times the shorter"):
        normalize_image(strip)


def test_a_thin_image_within_the_aspect_limit_is_upscaled_to_the_minimum_side():
    result = normalize_image(encode(Image.new("RGB", (10, 1000))))
    assert (result.width, result.height) == (28, 2800)
    assert Image.open(io.BytesIO(result.png)).size == (28, 2800)


def test_decompression_bomb_is_rejected_from_its_header():
    bomb = encode(Image.new("1", (12_000, 5_000)))  # 60 Mpx that compress to a few KB
    assert len(bomb) < 100_000
    with pytest.raises(ImageRejected, match="pixels"):
        normalize_image(bomb)


def test_truncated_or_corrupted_images_are_rejected():
    data = png(200, 200)
    with pytest.raises(ImageRejected, match="not a decodable image"):
        normalize_image(data[:100])
    corrupted = bytearray(data)
    corrupted[60] ^= 0xFF  # inside the first data chunk: its checksum no longer matches
    with pytest.raises(ImageRejected, match="not a decodable image"):
        normalize_image(bytes(corrupted))


def test_services_behind_the_gateway_refuse_what_it_would_have_shrunk():
    from tagllm.imaging import check_normalized

    check_normalized(png(300, 200))
    with pytest.raises(ImageRejected, match="the limit is 1003520 pixels"):
        check_normalized(png(2000, 1000))
    with pytest.raises(ImageRejected, match="not a decodable image"):
        check_normalized(b"junk")
    with pytest.raises(ImageRejected, match="limit is 10 bytes"):
        check_normalized(png(30, 30), ImageLimits(max_bytes=10))
