"""Images an attacker sends: formats beyond the documented six, PostScript, and JPEGs of many
scans. Shared by the unit tests of the decoder and the hostile suite through the stack."""

from __future__ import annotations

import io

from PIL import Image

EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n"
    b"newpath 0 0 moveto 64 64 lineto stroke showpage\n%%EOF\n"
)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def other_formats() -> dict[str, bytes]:
    """Files PIL itself reads and writes, none of them a documented format."""
    picture = Image.new("RGB", (64, 64), (200, 30, 30))
    formats = {
        "ICO": encode(picture, "ICO"),
        "PCX": encode(picture, "PCX"),
        "TGA": encode(picture, "TGA"),
        "SGI": encode(picture, "SGI"),
        "PPM": encode(picture, "PPM"),
        "XBM": encode(picture.convert("1"), "XBM"),
        "DDS": encode(picture.convert("RGBA"), "DDS"),
        "QOI": encode(picture, "QOI"),
        "JPEG 2000": encode(picture, "JPEG2000"),
        "EPS": EPS,
    }
    return formats


def many_scan_jpeg(scans: int, size: int = 512) -> bytes:
    """A progressive JPEG whose shortest scan is repeated until it has `scans` scans: decoders
    take each one as another pass over every pixel (a valid file; libjpeg only warns)."""
    picture = Image.linear_gradient("L").resize((size, size)).convert("RGB")
    data = encode(picture, "JPEG", progressive=True, quality=90)
    # An encoder's output: FF DA occurs only as a marker (scan data stuffs every FF).
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    spans = [data[a:b] for a, b in zip(starts, [*starts[1:], len(data) - 2], strict=True)]
    shortest = min(spans[1:], key=len)  # not the first: it starts the image's DC coefficients
    return data[:-2] + shortest * (scans - len(spans)) + data[-2:]
