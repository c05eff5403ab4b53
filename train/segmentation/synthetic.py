"""A small, learnable segmentation data set in the built-in layout, for tests, demos and bench.

Gray noisy background (class 0), red squares (class 1), blue discs (class 2); a 2-pixel ring
around every shape is 255 (ignored), as in Pascal VOC. Masks are palette PNGs whose stored
values are 0, 100 and 200, so the data needs the written ``label_map`` ({"map": {"100": 1,
"200": 2}}) to become classes 0-2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

STORED_VALUES = (0, 100, 200)
LABEL_MAP = {"map": {"100": 1, "200": 2}}
NUM_CLASSES = 3


def _palette_png(values: np.ndarray, path: Path) -> None:
    mask = Image.fromarray(values.astype(np.uint8), mode="P")
    palette = [0] * 768
    for value, color in ((100, (128, 0, 0)), (200, (0, 0, 128)), (255, (224, 224, 192))):
        palette[value * 3 : value * 3 + 3] = color
    mask.putpalette(palette)
    mask.save(path)


def make_sample(rng: np.random.Generator, size: int) -> tuple[Image.Image, np.ndarray]:
    pixels = rng.integers(90, 160, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    labels = Image.new("L", (size, size), 0)
    ignore = Image.new("L", (size, size), 0)
    draw, draw_labels, draw_ignore = ImageDraw.Draw(image), ImageDraw.Draw(labels), \
        ImageDraw.Draw(ignore)
    for value, color, shape in ((100, (220, 30, 30), "rectangle"), (200, (30, 30, 220), "ellipse")):
        side = int(rng.integers(size // 4, size // 2))
        x, y = (int(v) for v in rng.integers(0, size - side, 2))
        box = (x, y, x + side, y + side)
        getattr(draw, shape)(box, fill=color)
        getattr(draw_ignore, shape)((x - 2, y - 2, x + side + 2, y + side + 2), fill=255)
        getattr(draw_labels, shape)(box, fill=value)
    mask = np.array(labels)
    ring = (np.array(ignore) == 255) & (mask == 0)
    mask[ring] = 255
    return image, mask


def build(root: Path, *, train: int = 24, validation: int = 8, size: int = 64, seed: int = 0,
          label_map: bool = True) -> Path:
    """Write train, train_annotation, validation, validation_annotation (+ label_map) folders."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("validation", validation)):
        if not count:
            continue
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}_annotation").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, mask = make_sample(rng, size)
            image.save(root / split / f"{split}_{i:04d}.jpg", quality=95)
            _palette_png(mask, root / f"{split}_annotation" / f"{split}_{i:04d}.png")
    if label_map:
        (root / "label_map").mkdir(exist_ok=True)
        (root / "label_map" / "train_label_map.json").write_text(json.dumps(LABEL_MAP))
    return root
