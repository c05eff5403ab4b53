"""Photo-like JPEGs for the data benches, made on the spot (no downloads).

Smooth multi-scale colour fields, a few solid shapes with blurred edges and sensor-like grain:
at 500x375 and quality 90 about 60 KB each, the size and entropy of a typical web photo, so
entropy decoding and the inverse DCT cost what they cost on real photos.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Dog-breed-like mix of photo sizes (width, height) and their shares.
PHOTO_SIZES = (((500, 375), 0.4), ((640, 480), 0.25), ((800, 600), 0.2), ((1024, 768), 0.1),
               ((1600, 1200), 0.05))


def photo_jpeg(rng: np.random.Generator, width: int = 500, height: int = 375,
               quality: int = 90) -> bytes:
    field = np.zeros((height, width, 3), np.float32)
    amplitude = 1.0
    for cells in (3, 6, 12, 24, 48, 96, 192):
        noise = rng.random((cells * 3 // 4 + 1, cells + 1, 3)).astype(np.float32)
        layer = Image.fromarray((noise * 255).astype(np.uint8)).resize((width, height),
                                                                        Image.BICUBIC)
        field += amplitude * (np.asarray(layer, np.float32) / 255 - 0.5)
        amplitude *= 0.7
    field = (field - field.min()) / (field.max() - field.min())
    field = 0.5 * field + 0.5 * field.mean(axis=2, keepdims=True)  # photo-like saturation
    image = Image.fromarray((field * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 10))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        box = (x0, y0, x0 + int(rng.integers(20, width // 2)),
               y0 + int(rng.integers(20, height // 2)))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.0))
    grain = np.asarray(image, np.float32) + rng.normal(0, 9, (height, width, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def write_photo_folder(root: Path, count: int, class_names: list[str], *, mixed_sizes: bool,
                       seed: int = 0) -> list[tuple[int, int]]:
    """``root/<class>/<n>.jpg``; returns the (width, height) of each image."""
    rng = np.random.default_rng(seed)
    sizes, shares = zip(*PHOTO_SIZES, strict=True)
    made = []
    for n in range(count):
        size = (sizes[rng.choice(len(sizes), p=shares)] if mixed_sizes else (500, 375))
        folder = root / class_names[n % len(class_names)]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n:05d}.jpg").write_bytes(photo_jpeg(rng, *size))
        made.append(size)
    return made
