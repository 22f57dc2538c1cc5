import contextlib
import io
import subprocess
import sys

import pytest
from PIL import Image

from tagllm.imaging import (
    DEFAULT_LIMITS,
    ImageLimits,
    ImageRejected,
    check_normalized,
    jpeg_scans,
    normalize_image,
    sniff_format,
)
from tests.conftest import png
from tests.hostile_images import many_scan_jpeg, other_formats


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
    check_normalized(png(300, 200))
    with pytest.raises(ImageRejected, match="the limit is 1003520 pixels"):
        check_normalized(png(2000, 1000))
    with pytest.raises(ImageRejected, match="not a decodable image"):
        check_normalized(b"junk")
    with pytest.raises(ImageRejected, match="limit is 10 bytes"):
        check_normalized(png(30, 30), ImageLimits(max_bytes=10))


@pytest.mark.parametrize("fmt", list(other_formats()))
def test_formats_beyond_the_documented_six_are_refused_before_pil_reads_them(fmt):
    with pytest.raises(ImageRejected, match="no format this server reads"):
        normalize_image(other_formats()[fmt])


@pytest.mark.parametrize(
    "fmt, kwargs",
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("WEBP", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
    ],
)
def test_the_documented_formats_are_read(fmt, kwargs):
    data = encode(Image.new("RGB", (64, 48), (10, 200, 30)), fmt, **kwargs)
    assert sniff_format(data) == fmt
    assert (normalize_image(data).width, normalize_image(data).height) == (64, 48)


def test_a_file_that_lies_about_its_format_is_not_decoded_as_another():
    # TGA bytes behind a PNG signature: PIL is told PNG only, and PNG it is not.
    fake = b"\x89PNG\r\n\x1a\n" + other_formats()["TGA"]
    with pytest.raises(ImageRejected, match="not a decodable image"):
        normalize_image(fake)


def test_postscript_never_reaches_ghostscript_in_this_process():
    # A fresh interpreter: PIL loads every plugin it can, and EPS must not be among them.
    code = (
        "import io, tagllm.imaging\n"
        "from PIL import Image\n"
        "Image.init()\n"
        "assert 'EPS' not in Image.OPEN, sorted(Image.OPEN)\n"
        "from tests.hostile_images import EPS\n"
        "try:\n"
        "    Image.open(io.BytesIO(EPS))\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "UnidentifiedImageError"


def test_a_jpeg_of_many_scans_is_refused_before_decoding():
    with pytest.raises(ImageRejected, match="more than 32 scans"):
        normalize_image(many_scan_jpeg(2000))
    with pytest.raises(ImageRejected, match="more than 32 scans"):
        check_normalized(many_scan_jpeg(40))
    progressive = encode(Image.linear_gradient("L").convert("RGB"), "JPEG", progressive=True)
    assert jpeg_scans(progressive, 100) == 10  # an encoder's usual script passes
    normalize_image(progressive)


def test_scan_markers_inside_metadata_are_not_counted():
    exif = Image.Exif()
    exif[0x010E] = "\xff\xda" * 100  # the SOS marker's bytes inside an EXIF text
    data = encode(Image.new("RGB", (64, 64)), "JPEG", exif=exif)
    assert jpeg_scans(data, 1000) == 1


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_within_the_admitted_pixels():
    data = encode(Image.linear_gradient("L").resize((4000, 3000)).convert("RGB"), "JPEG")
    admitted = []

    @contextlib.contextmanager
    def admit(pixels):
        admitted.append(pixels)
        yield

    result = normalize_image(data, admit=admit)
    assert result.width * result.height <= DEFAULT_LIMITS.model_pixels
    assert admitted and admitted[0] <= 4 * DEFAULT_LIMITS.model_pixels < 4000 * 3000


def test_an_image_that_needs_no_decoding_asks_for_no_pixels():
    def admit(pixels):
        raise AssertionError("decoding was not needed")

    normalize_image(png(300, 200), admit=admit)


def test_a_refused_admission_passes_through_unchanged():
    class Full(Exception):
        pass

    def admit(pixels):
        raise Full(pixels)

    with pytest.raises(Full) as caught:
        normalize_image(png(2000, 1000), admit=admit)
    assert caught.value.args == (2_000_000,)
