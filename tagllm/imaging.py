"""Image checks and normalisation before anything reaches the model.

Limits are checked on the encoded bytes and on the header's dimensions before any pixel is
decoded, so an oversized file or a decompression bomb costs nothing. An image that needs no
change (upright, within the model's pixel budget) is checked for structure and checksums and
forwarded byte for byte: decoding it here would only repeat the model server's work. One that
needs a change is decoded, turned upright (EXIF orientation), shrunk to the budget and
re-encoded as PNG.
"""

from __future__ import annotations

import dataclasses
import io
import math
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

# Guard against decompression bombs: PIL itself refuses anything this large.
Image.MAX_IMAGE_PIXELS = 200_000_000


READABLE_FORMATS = "PNG, JPEG, WebP, GIF, BMP, TIFF"


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


def _check_bytes(data: bytes, limits: ImageLimits) -> None:
    if not data:
        raise ImageRejected("image is empty")
    if len(data) > limits.max_bytes:
        raise ImageRejected(f"image is {len(data)} bytes; the limit is {limits.max_bytes} bytes")


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


def normalize_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> NormalizedImage:
    _check_bytes(data, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            width, height = image.size
            _check_shape(width, height, limits.max_pixels, limits)
            upright = _orientation(image) == 1
            fits = width * height <= limits.model_pixels and min(width, height) >= limits.min_side
            if upright and fits:
                # Chunk structure and checksums, without decoding pixels (verify needs a fresh open).
                Image.open(io.BytesIO(data)).verify()
                return NormalizedImage(data, width, height)
            image.load()
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
    upright_image = ImageOps.exif_transpose(image).convert("RGB")
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
    _check_bytes(data, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            width, height = Image.open(io.BytesIO(data)).size
    except Exception as exc:
        raise ImageRejected(f"not a decodable image ({type(exc).__name__})") from None
    _check_shape(width, height, limits.model_pixels, limits)
