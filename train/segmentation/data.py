"""Image/annotation pairs from the built-in algorithm's four channels, checked before training.

``train`` + ``train_annotation`` and ``validation`` + ``validation_annotation``: JPEG (or PNG)
images and PNG masks with the same relative name (``a/2007_000032.jpg`` ->
``a/2007_000032.png``). Masks are 8-bit palette (``P``) or grayscale (``L``) PNGs read as class
indices, never palette-converted; 255 marks pixels the loss and metrics ignore.

The optional ``label_map`` channel holds ``train_label_map.json`` and
``validation_label_map.json`` (validation falls back to the train map): ``{"scale": k}`` floor-
divides every value by k, then ``{"map": {"old": new}}`` renames values; 255 is never changed and
unlisted values keep their value. Every mask is read once up front so that a bad file fails the
job with its name before any training happens. (Pipe mode streams the same pairs as bytes and
checks each with ``check_sample`` as it arrives: ``train.segmentation.pipe``.)

Colour masks (RGB PNGs, as Ground Truth writes them) are read through a colour map, one
``(packed RGB, class id)`` pair per colour, taken from Ground Truth's ``internal-color-map``
(``train.segmentation.manifest``); a colour the map does not list fails the job.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from train.contract import INPUT_MODE_PIPE, TrainingEnv
from train.errors import UserError
from train.segmentation.manifest import ColorMap, is_manifest_channel, read_manifest

IGNORE_INDEX = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LABEL_MAP_CHANNEL = "label_map"
MASK_MODES = ("P", "L")
COLOR_MODES = ("RGB", "RGBA")


@dataclass(frozen=True)
class LabelMap:
    scale: int = 1
    mapping: tuple[tuple[int, int], ...] = ()

    def lookup_table(self) -> np.ndarray:
        """A 256-entry table: mask value -> class index (255 stays 255)."""
        table = np.arange(256, dtype=np.int64) // self.scale
        table[IGNORE_INDEX] = IGNORE_INDEX
        remapped = table.copy()
        for old, new in self.mapping:
            remapped[table == old] = new
        remapped[IGNORE_INDEX] = IGNORE_INDEX
        return remapped


@dataclass(frozen=True)
class Pair:
    image: Path
    mask: Path
    colors: ColorMap = ()  # set for manifests whose metadata has an internal-color-map


@dataclass(frozen=True)
class Split:
    name: str
    pairs: list[Pair]
    table: np.ndarray


def read_label_map(path: Path) -> LabelMap:
    fix = ('write {"scale": 3} and/or {"map": {"0": 0, "38": 1, "75": 2}} '
           "(integers 0-255; values of 255 are ignored pixels)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"label map {path} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(doc, dict) or not doc or set(doc) - {"scale", "map"}:
        raise UserError(f"label map {path} must be an object with 'scale' and/or 'map'; {fix}")
    scale = doc.get("scale", 1)
    if not isinstance(scale, int) or isinstance(scale, bool) or not 1 <= scale <= 255:
        raise UserError(f"label map {path}: scale={scale!r} must be an integer 1-255; {fix}")
    raw = doc.get("map", {})
    if not isinstance(raw, dict):
        raise UserError(f"label map {path}: 'map' must be an object of old: new; {fix}")
    mapping = []
    for old, new in raw.items():
        try:
            pair = (int(old), int(new))
        except (TypeError, ValueError):
            pair = (-1, -1)
        if isinstance(new, bool) or not all(0 <= v <= 255 for v in pair):
            raise UserError(f"label map {path}: entry {old!r}: {new!r} must map an integer "
                            f"0-255 to an integer 0-255; {fix}")
        mapping.append(pair)
    return LabelMap(scale=scale, mapping=tuple(mapping))


def label_map_for(env: TrainingEnv, split: str) -> LabelMap:
    if env.input_mode(LABEL_MAP_CHANNEL) == INPUT_MODE_PIPE:
        raise UserError(f"channel {LABEL_MAP_CHANNEL!r} uses Pipe input mode; declare it with "
                        "input_mode='File': its small JSON files are read before training")
    folder = env.channel_dir(LABEL_MAP_CHANNEL)
    for name in (f"{split}_label_map.json", "train_label_map.json"):
        if (folder / name).is_file():
            return read_label_map(folder / name)
    return LabelMap()


def _files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    return {
        str(p.relative_to(folder).with_suffix("")): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
    }


def find_pairs(images_dir: Path, masks_dir: Path, split: str) -> list[Pair]:
    if not images_dir.is_dir():
        raise UserError(f"channel {split!r} is missing ({images_dir}); semantic segmentation "
                        f"needs {split} and {split}_annotation channels")
    if not masks_dir.is_dir():
        raise UserError(f"channel '{split}_annotation' is missing ({masks_dir}); give each "
                        f"image in {split!r} a same-named PNG mask in '{split}_annotation'")
    images, masks = _files(images_dir, IMAGE_SUFFIXES), _files(masks_dir, (".png",))
    if not images:
        raise UserError(f"channel {split!r} ({images_dir}) holds no .jpg/.jpeg/.png images")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise UserError(
            f"{len(missing)} image(s) in channel {split!r} have no annotation, e.g. "
            f"{images[missing[0]].name}: expected {missing[0]}.png in channel "
            f"'{split}_annotation'. Add the masks or remove those images"
        )
    return [Pair(images[key], masks[key]) for key in images]


def open_image(source: Path | bytes) -> Image.Image:
    """A file (File mode) or a streamed record's bytes (Pipe mode), opened lazily."""
    return Image.open(source if isinstance(source, Path) else io.BytesIO(source))


def read_mask(source: Path | bytes, colors: ColorMap = (), name: str = "") -> np.ndarray:
    """The mask's 8-bit values (palette indices or gray levels), shape (H, W); with ``colors``
    an RGB mask's colours become their class ids. ``name`` names it in errors."""
    name = name or str(source)
    try:
        with open_image(source) as img:
            if colors and img.mode in COLOR_MODES:
                return _colors_to_classes(np.array(img.convert("RGB")), colors, name)
            if img.mode not in MASK_MODES:
                hint = (" (RGB masks need a Ground Truth manifest whose '<label>-metadata' has "
                        "an internal-color-map; in Pipe mode stream that attribute too, e.g. "
                        "AttributeNames [\"source-ref\", \"<job>-ref\", "
                        "\"<job>-ref-metadata\"], and set the hyperparameter attribute_names to "
                        "the same list)" if img.mode in COLOR_MODES else "")
                raise UserError(
                    f"annotation {name} has mode {img.mode}; save masks as 8-bit palette (P) or "
                    f"grayscale (L) PNGs whose pixel values are class indices (255 = ignore)"
                    f"{hint}"
                )
            return np.array(img, dtype=np.uint8)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"annotation {name} cannot be read as a PNG ({exc}); replace it") from exc


def _colors_to_classes(rgb: np.ndarray, colors: ColorMap, name: str) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    found, inverse = np.unique(packed, return_inverse=True)
    lookup = dict(colors)
    unknown = [int(c) for c in found if int(c) not in lookup]
    if unknown:
        known = ", ".join(f"#{c:06x}={i}" for c, i in colors)
        raise UserError(
            f"annotation {name} has colour(s) {', '.join(f'#{c:06x}' for c in unknown[:5])} "
            f"that the internal-color-map does not list (it has {known}); fix the label PNG or "
            "add the colour to the manifest line's metadata"
        )
    classes = np.array([lookup[int(c)] for c in found], dtype=np.uint8)
    return classes[inverse.reshape(packed.shape)]


def check_sample(image: Path | bytes, mask: Path | bytes, colors: ColorMap, table: np.ndarray,
                 num_classes: int, image_name: str, mask_name: str) -> None:
    """Fail with the file's name unless the image opens, the mask has its size and every
    class value (after the label map) is below ``num_classes`` or 255."""
    try:
        with open_image(image) as img:
            size = img.size
    except Exception as exc:
        raise UserError(f"image {image_name} cannot be read ({exc}); replace or remove it"
                        ) from exc
    check_decoded(size, read_mask(mask, colors, mask_name), table, num_classes, image_name,
                  mask_name)


def check_decoded(size: tuple[int, int], values: np.ndarray, table: np.ndarray,
                  num_classes: int, image_name: str, mask_name: str) -> None:
    """``check_sample`` on an image's size and a mask already decoded."""
    if (values.shape[1], values.shape[0]) != size:
        raise UserError(
            f"annotation {mask_name} is {values.shape[1]}x{values.shape[0]} but its image "
            f"{image_name} is {size[0]}x{size[1]}; a mask must have its image's exact size"
        )
    labels = np.unique(table[values])
    bad = labels[(labels >= num_classes) & (labels != IGNORE_INDEX)]
    if bad.size:
        raise UserError(
            f"annotation {mask_name} has class value(s) {bad.tolist()} (after the label map) "
            f">= num_classes={num_classes}; use values 0-{num_classes - 1} and 255 for ignored "
            "pixels, raise num_classes, or add a label_map channel"
        )


def check_pair(pair: Pair, table: np.ndarray, num_classes: int) -> None:
    check_sample(pair.image, pair.mask, pair.colors, table, num_classes, str(pair.image),
                 str(pair.mask))


def load_split(env: TrainingEnv, split: str, num_classes: int, required: bool) -> Split | None:
    """A File-mode channel's pairs, every one checked: an augmented manifest (``-ref`` labels)
    or images in ``split`` with same-named masks in ``<split>_annotation``. Pipe-mode channels
    are streams (``train.segmentation.pipe``)."""
    images_dir = env.channel_dir(split)
    if is_manifest_channel(env, split):
        pairs = [Pair(image, mask, colors) for image, mask, colors in read_manifest(env, split)]
    elif not required and not images_dir.is_dir():
        return None
    else:
        pairs = find_pairs(images_dir, env.channel_dir(f"{split}_annotation"), split)
    table = label_map_for(env, split).lookup_table()
    for pair in pairs:
        check_pair(pair, table, num_classes)
    return Split(split, pairs, table)
