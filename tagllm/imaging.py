"""Image checks and normalisation before anything reaches the model.

Limits are checked on the encoded bytes and on the header's dimensions before any pixel is
decoded, so an oversized file or a decompression bomb costs nothing. Only the six documented
formats are opened, recognised by their first bytes before PIL sees them; PIL's other decoders
are never tried, and the one that hands bytes to an external program (EPS, to Ghostscript) is
never loaded. A JPEG with more scans than a limit is refused before decoding: each progressive
scan is another pass over every pixel, so a file of thousands of tiny scans costs minutes of CPU.

An image that needs no change (upright, within the model's pixel budget) is checked for
structure and checksums and forwarded byte for byte: decoding it here would only repeat the
model server's work. One that needs a change is decoded (a large JPEG at a reduced scale),
turned upright (EXIF orientation), shrunk to the budget and re-encoded as PNG; the caller's
`admit` reserves the pixels decoded while that happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import sys
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager

# PIL's EPS decoder runs Ghostscript on the bytes it is given. Marking the module missing before
# PIL loads its plugins keeps it out of this process for good (PIL skips plugins it cannot import).
sys.modules.setdefault("PIL.EpsImagePlugin", None)  # type: ignore[arg-type]

from PIL import Image, ImageOps, UnidentifiedImageError  # noqa: E402

# Guard against decompression bombs: PIL itself refuses anything this large.
Image.MAX_IMAGE_PIXELS = 200_000_000

# The formats PIL may open, by PIL's names; nothing else is tried.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
READABLE_FORMATS = "PNG, JPEG, WebP, GIF, BMP, TIFF"
_SIGNATURES = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "GIF": (b"GIF87a", b"GIF89a"),
    "BMP": (b"BM",),
    "TIFF": (b"II*\x00", b"MM\x00*"),
}


class ImageRejected(ValueError):
    """The image breaks a limit or is not an image; the message says which."""


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    # Larger images are shrunk to this many pixels (Qwen2.5-VL's default budget: 1280 x 28 x 28).
    model_pixels: int = 1280 * 28 * 28
    # Both sides at least this long after normalisation.
    min_side: int = 28
    # Longer side over shorter side. Qwen2.5-VL's processor refuses 200 and more; the limit also
    # bounds the upscale to `min_side`, which would turn a 1x400000 strip into 28x11200000.
    max_aspect_ratio: float = 200.0
    # Scans of one JPEG (a baseline JPEG has 1 or 3, a progressive one about 10).
    max_jpeg_scans: int = 32


DEFAULT_LIMITS = ImageLimits()


@dataclasses.dataclass(frozen=True)
class NormalizedImage:
    # The image the model gets: the input's bytes when they needed no change, else a PNG.
    png: bytes
    width: int
    height: int


_ORIENTATION = 0x0112


def _orientation(image: Image.Image) -> int:
    """EXIF orientation from the header. A PNG keeps EXIF in an eXIf chunk; PIL would decode the
    whole image to look for one after the pixels, so only a chunk before them counts."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    return image.getexif().get(_ORIENTATION, 1)


def _check_bytes(data: bytes, limits: ImageLimits) -> str:
    """The image's format from its first bytes, once size and format are allowed."""
    if not data:
        raise ImageRejected("image is empty")
    if len(data) > limits.max_bytes:
        raise ImageRejected(f"image is {len(data)} bytes; the limit is {limits.max_bytes} bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(
            f"not a decodable image: {len(data)} bytes in no format this server reads ({READABLE_FORMATS})"
        )
    if fmt == "JPEG":
        scans = jpeg_scans(data, limits.max_jpeg_scans)
        if scans > limits.max_jpeg_scans:
            raise ImageRejected(
                f"JPEG has more than {limits.max_jpeg_scans} scans; the limit is {limits.max_jpeg_scans}"
            )
    return fmt


def sniff_format(data: bytes) -> str | None:
    """The allowed format `data` starts like (PIL's name), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for fmt, signatures in _SIGNATURES.items():
        if data.startswith(signatures):
            return fmt
    return None


_JPEG_SOS = 0xDA
# Markers without a length field: SOI, EOI, TEM, and the restart markers inside scan data.
_JPEG_BARE = {0xD8, 0xD9, 0x01, *range(0xD0, 0xD8)}


def jpeg_scans(data: bytes, stop_after: int) -> int:
    """Start-of-scan markers in a JPEG (counting stops past `stop_after`). Walks the segments by
    their lengths and, inside scan data, only real markers: a 0xFF there is followed by a stuffed
    0x00 or a restart marker, so an FF DA in metadata or pixels is never miscounted."""
    scans, position, end = 0, 2, len(data)
    while position + 1 < end and scans <= stop_after:
        if data[position] != 0xFF:
            break  # not a marker where one must be: PIL reports the damage
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_BARE:
            position += 2
            continue
        if position + 4 > end:
            break
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        position += 2 + length
        if marker != _JPEG_SOS:
            continue
        scans += 1
        # Entropy-coded data runs to the next marker that is neither stuffing nor a restart.
        while True:
            position = data.find(b"\xff", position)
            if position < 0 or position + 1 >= end:
                return scans
            following = data[position + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                position += 1 if following == 0xFF else 2
                continue
            break
    return scans


def _check_shape(width: int, height: int, max_pixels: int, limits: ImageLimits) -> None:
    if width * height > max_pixels:
        raise ImageRejected(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels"
        )
    if max(width, height) >= limits.max_aspect_ratio * max(1, min(width, height)):
        raise ImageRejected(
            f"image is {width}x{height}; the longer side must be less than "
            f"{limits.max_aspect_ratio:g} times the shorter"
        )


# Reserves decoding memory for a number of pixels while the context is open; raises to refuse.
PixelAdmission = Callable[[int], AbstractContextManager[object]]


def _admit_all(pixels: int) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


def normalize_image(
    data: bytes, limits: ImageLimits = DEFAULT_LIMITS, admit: PixelAdmission = _admit_all
) -> NormalizedImage:
    """The image the model gets, or ImageRejected. `admit(pixels)` is entered around decoding
    (only an image that needs a change is decoded); what it raises passes through unchanged."""
    fmt = _check_bytes(data, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])  # reads the header only
            width, height = image.size
            _check_shape(width, height, limits.max_pixels, limits)
            upright = _orientation(image) == 1
            fits = width * height <= limits.model_pixels and min(width, height) >= limits.min_side
            if upright and fits:
                # Chunk structure and checksums, without decoding pixels (verify needs a fresh open).
                Image.open(io.BytesIO(data), formats=[fmt]).verify()
                return NormalizedImage(data, width, height)
            if fmt == "JPEG" and width * height > limits.model_pixels:
                # Decoded at 1/2, 1/4 or 1/8 scale where that still covers the budget: less
                # memory and CPU than decoding every pixel to throw most away.
                scale = math.sqrt(limits.model_pixels / (width * height))
                image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"image exceeds the pixel limit: {exc}") from exc
    except UnidentifiedImageError:
        raise ImageRejected(
            f"not a decodable image: {len(data)} bytes in no format this server reads ({READABLE_FORMATS})"
        ) from None
    except Exception as exc:
        raise ImageRejected(f"not a decodable image ({type(exc).__name__}: {exc})") from exc
    with admit(image.size[0] * image.size[1]):
        return _decode_and_fit(image, limits)


def _decode_and_fit(image: Image.Image, limits: ImageLimits) -> NormalizedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except Exception as exc:
        raise ImageRejected(f"not a decodable image ({type(exc).__name__}: {exc})") from exc
    # One copy of the pixels at a time where possible: convert only what is not RGB already, and
    # turn upright in place (each copy of a 40-megapixel image is 160 MB).
    upright_image = image if image.mode == "RGB" else image.convert("RGB")
    if upright_image is not image:
        image.close()
    ImageOps.exif_transpose(upright_image, in_place=True)
    width, height = upright_image.size
    if width * height > limits.model_pixels:
        scale = math.sqrt(limits.model_pixels / (width * height))
        width, height = max(1, int(width * scale)), max(1, int(height * scale))
        # Every resize is checked before it allocates: the budget, and the shape rounding made.
        _check_shape(width, height, limits.model_pixels, limits)
        upright_image = upright_image.resize((width, height), Image.Resampling.BICUBIC)
    if min(width, height) < limits.min_side:
        scale = limits.min_side / min(width, height)
        width, height = math.ceil(width * scale), math.ceil(height * scale)
        _check_shape(width, height, limits.model_pixels, limits)
        upright_image = upright_image.resize((width, height), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    upright_image.save(out, format="PNG", compress_level=1)  # fast; the bytes only travel to the model
    png = out.getvalue()
    return NormalizedImage(png, width, height)


def check_normalized(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> None:
    """Raises ImageRejected unless `data` is what `normalize_image` could have produced: within
    the byte limit and the model's pixel budget. Reads the header only; for services behind the
    gateway, which trust no caller to have normalised."""
    fmt = _check_bytes(data, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            width, height = Image.open(io.BytesIO(data), formats=[fmt]).size
    except Exception as exc:
        raise ImageRejected(f"not a decodable image ({type(exc).__name__})") from None
    _check_shape(width, height, limits.model_pixels, limits)
