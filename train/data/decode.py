"""Image bytes → RGB ``uint8`` array (height, width, 3) for training, as fast as it can be done.

JPEG (what photos and RecordIO files hold) is decoded with libjpeg-turbo through ``simplejpeg``
when it is installed: 0.77 ms for a 500x375 photo where Pillow, on the same library, takes
1.18 ms (bench/results/data_peers.md). It can also scale in the DCT domain while decoding, and
``min_short_side`` asks for that: when the image's shorter side is at least twice what the
transform needs, it is decoded at a reduced scale (n/8) whose shorter side is still at least
``min_short_side`` (1024x768: 2.73 instead of 3.26 ms). Below a factor of two a scaled decode
is slower than a full one, so the image is decoded whole.

Everything else, and every JPEG that libjpeg-turbo does not turn into RGB on its own (CMYK,
YCCK, or data it refuses), goes through Pillow (``common.preprocessing.decode_image``), so an
image is readable or unreadable exactly as before, with the same error.
"""

from __future__ import annotations

import numpy as np

from common.preprocessing import MAX_IMAGE_PIXELS, ImageDecodeError, decode_image

try:
    import simplejpeg
except ImportError:  # optional: Pillow decodes everything on its own
    simplejpeg = None

JPEG_MAGIC = b"\xff\xd8\xff"
# libjpeg-turbo converts these to RGB exactly as Pillow does; CMYK/YCCK need Pillow's handling.
_TURBO_COLORSPACES = frozenset({"YCbCr", "Gray"})
# Reduced-scale decoding only pays when it at least halves each side.
MIN_SCALE_FACTOR = 2


def fast_jpeg_available() -> bool:
    return simplejpeg is not None


def decode_rgb(data: bytes, min_short_side: int | None = None) -> np.ndarray:
    """Decode ``data`` to an RGB ``uint8`` array; raise ``ImageDecodeError`` if unreadable.

    ``min_short_side``: the smallest shorter side the caller needs; the image may come back
    smaller than its true size, but never with a shorter side below this (or its own).
    """
    if simplejpeg is not None and data[:3] == JPEG_MAGIC:
        image = _decode_jpeg(data, min_short_side)
        if image is not None:
            return image
    return pil_rgb(data)


def pil_rgb(data: bytes) -> np.ndarray:
    """Pillow's decoding, as the model server does it (a writable copy of its pixels)."""
    return np.array(decode_image(data))


def _decode_jpeg(data: bytes, min_short_side: int | None) -> np.ndarray | None:
    """libjpeg-turbo's RGB, or None to let Pillow decide (and word any error)."""
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if colorspace not in _TURBO_COLORSPACES:
        return None
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageDecodeError(
            f"image is {width}x{height} pixels, above the limit of {MAX_IMAGE_PIXELS}"
        )
    scale = {}
    if min_short_side and min(width, height) >= MIN_SCALE_FACTOR * min_short_side:
        scale = {"min_height": min_short_side, "min_width": min_short_side,
                 "min_factor": MIN_SCALE_FACTOR}
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", **scale)
    except ValueError:  # corrupt or truncated: Pillow gives the verdict and the message
        return None
