"""Pixels for the network, without torch: decode, bound, resize, crop, normalize.

Every input is checked against the memory its preprocessing will allocate *before* any pixel is
decoded (the header or the .npy shape is enough), so an over-limit input costs milliseconds and
a 400 naming the limit, never gigabytes:

* at most ``MAX_IMAGE_PIXELS`` (8192 x 8192) pixels: Pillow stores at most 4 bytes a pixel in
  any mode, so decoding takes at most 256 MiB, and the RGB copy as much again;
* classification resizes the shorter side to the artifact's ``resize``, so a thin image (a
  1,000,000 x 1 PNG) would grow to ``resize`` x 224,000,000: the resized image must also fit
  ``MAX_IMAGE_PIXELS``, which bounds the aspect ratio.

The fast path (``classification_input``) matches ``common.preprocessing.eval_transform`` — resize
the shorter side, centre crop, normalize — to within one 8-bit level per pixel (Pillow's and
torchvision's antialiased bilinear filters round differently), but resizes only the pixels the
crop keeps, and lets JPEG decoding downscale in the DCT domain (Pillow's ``draft``) when the image
is at least twice the size the resize needs.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from common.artifact import InputSpec
from serve.errors import BadInput

# The limit training's decoding applies too (common.preprocessing, which imports torch: the CPU
# serving image has none). tests/serve checks the two agree.
MAX_IMAGE_PIXELS = 8192 * 8192


def check_size(width: int, height: int, resize: int | None, what: str = "image") -> None:
    """Refuse, with the limit named, what preprocessing could not afford (see module doc)."""
    if width < 1 or height < 1:
        raise BadInput(f"{what} is {width}x{height} pixels; send an image with pixels")
    pixels = width * height
    if pixels > MAX_IMAGE_PIXELS:
        raise BadInput(f"{what} is {width}x{height} pixels, above the limit of "
                       f"{MAX_IMAGE_PIXELS} (8192x8192); send a smaller image")
    if resize is not None:
        new_w, new_h = resized_size(width, height, resize)
        if new_w * new_h > MAX_IMAGE_PIXELS:
            raise BadInput(
                f"{what} is {width}x{height} pixels: resizing its shorter side to {resize} "
                f"(the model's input) would make it {new_w}x{new_h}, above the limit of "
                f"{MAX_IMAGE_PIXELS} pixels; its aspect ratio is too extreme: crop or pad it")


def resized_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """torchvision's Resize(int): the shorter side becomes ``resize``, the longer follows."""
    if width <= height:
        return resize, int(resize * height / width)
    return int(resize * width / height), resize


def open_image(data: bytes, resize: int | None, draft: bool = False) -> Image.Image:
    """Image bytes -> RGB, size-checked from the header before any pixel is decoded. ``draft``:
    let JPEG decoding downscale by up to the factor the later resize would (fast path)."""
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
    except Exception as exc:  # Pillow raises many types for unreadable headers
        raise BadInput(f"cannot decode image: {exc}") from exc
    check_size(width, height, resize)
    try:
        if draft and resize is not None and image.format == "JPEG":
            image.draft("RGB", resized_size(width, height, resize))
        image.load()
        return image if image.mode == "RGB" else image.convert("RGB")
    except Exception as exc:
        raise BadInput(f"cannot decode image: {exc}") from exc


def array_image(array: np.ndarray, resize: int | None) -> Image.Image:
    """An HWC uint8 array (C 1 or 3) -> RGB image, with the same bounds as encoded images."""
    height, width, channels = array.shape
    check_size(width, height, resize, what="npy image")
    return Image.fromarray(array[..., 0] if channels == 1 else array).convert("RGB")


def normalize(pixels: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """HWC uint8 -> CHW float32, ``(x / 255 - mean) / std``."""
    scale = np.float32(1.0 / 255.0) / np.asarray(std, dtype=np.float32)
    shift = np.asarray(mean, dtype=np.float32) / np.asarray(std, dtype=np.float32)
    out = pixels.astype(np.float32) * scale - shift
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def classification_input(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """eval_transform's resize -> centre crop -> normalize, as CHW float32 (see module doc)."""
    width, height = image.size
    new_w, new_h = resized_size(width, height, spec.resize)
    if new_w >= spec.width and new_h >= spec.height:
        # Resample only the crop: the box is the crop's footprint in the source image.
        top = round((new_h - spec.height) / 2.0)
        left = round((new_w - spec.width) / 2.0)
        sx, sy = width / new_w, height / new_h
        box = (left * sx, top * sy, (left + spec.width) * sx, (top + spec.height) * sy)
        pixels = np.asarray(image.resize((spec.width, spec.height), Image.BILINEAR, box=box))
    else:  # the crop is larger than the resized image: CenterCrop pads with zeros
        resized = np.asarray(image.resize((new_w, new_h), Image.BILINEAR))
        pixels = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)
        top, left = (spec.height - new_h) // 2, (spec.width - new_w) // 2
        ct, cl = max(0, -top), max(0, -left)
        h, w = min(new_h, spec.height), min(new_w, spec.width)
        pixels[max(0, top):max(0, top) + h, max(0, left):max(0, left) + w] = \
            resized[ct:ct + h, cl:cl + w]
    return normalize(pixels, spec.mean, spec.std)
