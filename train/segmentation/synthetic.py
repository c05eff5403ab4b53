"""A small, learnable segmentation data set in the built-in layout, for tests, demos and bench.

Gray noisy background (class 0), red squares (class 1), blue discs (class 2); a 2-pixel ring
around every shape is 255 (ignored), as in Pascal VOC. Masks are palette PNGs whose stored
values are 0, 100 and 200, so the data needs the written ``label_map`` ({"map": {"100": 1,
"200": 2}}) to become classes 0-2.

``build_ground_truth`` writes the same shapes as a Ground Truth semantic-segmentation job's
output: an augmented manifest per split whose ``<job>-ref`` names an RGB label PNG, and an
``internal-color-map`` in ``<job>-ref-metadata`` (ignored rings become background: Ground Truth
masks have no ignore value). With ``palette_masks`` the label PNGs are palette PNGs whose indices
are the class ids (drawn in the same colours), which need no colour map.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

STORED_VALUES = (0, 100, 200)
GT_JOB = "shapes"
GT_COLORS = ("#ffffff", "#2ca02c", "#1f77b4")  # background, square, disc
GT_BUCKET = "s3://bucket/"
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


def color_map_metadata(colors: tuple[str, ...] = GT_COLORS) -> dict:
    """``<job>-ref-metadata`` as Ground Truth writes it for semantic segmentation."""
    names = ("BACKGROUND", "square", "disc")
    return {
        "internal-color-map": {str(i): {"class-name": names[i], "hex-color": color,
                                        "confidence": 0.9}
                               for i, color in enumerate(colors)},
        "type": "groundtruth/semantic-segmentation", "human-annotated": "yes",
        "creation-date": "2024-01-01T00:00:00.000000", "job-name": f"labeling-job/{GT_JOB}",
    }


def _gt_rgb() -> np.ndarray:
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in GT_COLORS], np.uint8)


def _color_png(classes: np.ndarray, path: Path) -> None:
    Image.fromarray(_gt_rgb()[classes]).save(path)


def _class_palette_png(classes: np.ndarray, path: Path) -> None:
    mask = Image.fromarray(classes.astype(np.uint8), mode="P")
    mask.putpalette(_gt_rgb().flatten().tolist())
    mask.save(path)


def build_ground_truth(root: Path, *, train: int = 24, validation: int = 8, size: int = 64,
                       seed: int = 0, palette_masks: bool = False) -> Path:
    """Write ``train/train.manifest``, ``validation/validation.manifest`` and ``images/``
    (photos under ``raw/``, colour label PNGs under ``labels/``), keyed as if ``images/`` were
    a copy of ``s3://bucket/``."""
    rng = np.random.default_rng(seed)
    classes = np.zeros(256, dtype=np.int64)
    classes[list(STORED_VALUES)] = range(NUM_CLASSES)
    for folder in ("images/raw", "images/labels"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("validation", validation)):
        if not count:
            continue
        (root / split).mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(count):
            name = f"{split}_{i:04d}"
            image, mask = make_sample(rng, size)
            image.save(root / "images" / "raw" / f"{name}.jpg", quality=95)
            write = _class_palette_png if palette_masks else _color_png
            write(classes[mask], root / "images" / "labels" / f"{name}.png")
            lines.append(json.dumps({
                "source-ref": f"{GT_BUCKET}raw/{name}.jpg",
                f"{GT_JOB}-ref": f"{GT_BUCKET}labels/{name}.png",
                f"{GT_JOB}-ref-metadata": color_map_metadata(),
            }))
        (root / split / f"{split}.manifest").write_text("\n".join(lines) + "\n")
    return root
