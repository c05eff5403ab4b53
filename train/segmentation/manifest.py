"""Augmented manifests for semantic segmentation: the built-in algorithm's ``-ref`` labels.

One JSON line per image, as Ground Truth's semantic-segmentation jobs write them::

    {"source-ref": "s3://bucket/images/cat1.jpg",
     "cats-ref": "s3://bucket/output/cats/annotations/consolidated-annotation/output/0.png",
     "cats-ref-metadata": {"internal-color-map": {
         "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff"},
         "1": {"class-name": "cat", "hex-color": "#2ca02c"}}, ...}}

The attributes are the channel's ``AttributeNames`` (image first, label PNG second, as the
built-in requires), else ``source-ref`` and the line's one other attribute that is not
metadata (``train.data.manifest.choose_attributes``). Both references are looked up in a local
folder by their S3 key exactly as classification's File-mode manifests are
(``train.data.source_ref``): the channel ``<channel>_images`` or ``images``, else the manifest's
own channel. ``<label>-metadata``'s ``internal-color-map`` (when present) maps each colour of an
RGB label PNG to its class id (``train.segmentation.data.read_mask``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from train.contract import INPUT_MODE_PIPE, TrainingEnv
from train.data.channels import images_channel
from train.data.manifest import (
    METADATA_SUFFIX,
    Attributes,
    choose_attributes,
    manifest_files,
    read_lines,
)
from train.data.source_ref import SourceResolver
from train.errors import UserError

log = logging.getLogger(__name__)

LABEL_REF_SUFFIX = "-ref"
COLOR_MAP_KEY = "internal-color-map"
HEX_COLOR = re.compile(r"#?([0-9a-fA-F]{6})")
COLOR_MAP_EXAMPLE = ('{"0": {"class-name": "BACKGROUND", "hex-color": "#ffffff"}, '
                     '"1": {"class-name": "cat", "hex-color": "#2ca02c"}}')
# A colour map: (0xRRGGBB, class id) pairs. A tuple, so that pairs stay hashable and picklable.
ColorMap = tuple[tuple[int, int], ...]
Entry = tuple[Path, Path, ColorMap]  # image, label PNG, colour map (empty if none)


def has_ref_labels(attribute_names: tuple[str, ...]) -> bool:
    """``AttributeNames`` like ``["source-ref", "cats-ref"]``: a label that is a PNG reference,
    which only semantic segmentation reads."""
    return len(attribute_names) >= 2 and attribute_names[1].endswith(LABEL_REF_SUFFIX)


def manifest_has_ref_labels(env: TrainingEnv, channel: str) -> bool:
    """A File-mode channel's manifest whose first line's label attribute is a ``-ref`` (a PNG
    mask): Ground Truth semantic segmentation. Reads one line."""
    files = manifest_files(env.channel_dir(channel))
    if not files or env.input_mode(channel) == INPUT_MODE_PIPE:
        return False
    for number, obj in read_lines(files[0]):
        try:
            label = choose_attributes(obj, (), None, f"{files[0].name}, line {number}").label
        except UserError:
            return False
        return label.endswith(LABEL_REF_SUFFIX)
    return False


def is_manifest_channel(env: TrainingEnv, channel: str) -> bool:
    """The channel is an augmented manifest: it has ``AttributeNames``, or it holds a
    ``.manifest``/``.jsonl`` file and there is no ``<channel>_annotation`` channel."""
    config = env.channels.get(channel)
    if config is not None and config.attribute_names:
        return True
    if f"{channel}_annotation" in env.available_channels():
        return False
    return bool(manifest_files(env.channel_dir(channel)))


def read_manifest(env: TrainingEnv, channel: str) -> list[Entry]:
    """Every line's image, label PNG and colour map, with both files found on disk."""
    folder = env.channel_dir(channel)
    files = manifest_files(folder)
    if not files:
        raise UserError(f"channel {channel!r} at {folder} holds no manifest (a file ending in "
                        ".manifest or .jsonl); semantic segmentation reads an augmented manifest "
                        f"there, or images in {channel!r} with PNG masks in "
                        f"'{channel}_annotation'")
    images = images_channel(env, channel)
    root = env.channel_dir(images) if images else folder
    resolver = SourceResolver(root)
    config = env.channels.get(channel)
    attribute_names = config.attribute_names if config else ()
    entries: list[Entry] = []
    missing: list[str] = []
    attributes: Attributes | None = None
    for path in files:
        for number, obj in read_lines(path):
            where = f"{path.name}, line {number}"
            if attributes is None:
                attributes = choose_attributes(obj, attribute_names, None, where)
            image_ref = _reference(obj, attributes.image, "image", where)
            label_ref = _reference(obj, attributes.label, "label PNG", where)
            image, label = resolver.resolve(image_ref, where), resolver.resolve(label_ref, where)
            missing += [f"{where}: {ref}" for ref, found in ((image_ref, image),
                                                            (label_ref, label)) if found is None]
            if image is None or label is None:
                continue
            colors = color_map(obj.get(attributes.label + METADATA_SUFFIX), where)
            entries.append((root / image, root / label, colors))
    if missing:
        raise UserError(
            f"channel {channel!r}: {len(missing)} file(s) named in the manifest are not in "
            f"{root} (e.g. {'; '.join(missing[:3])}). Put the images and label PNGs in a "
            f"channel named '{channel}_images' or 'images' (or beside the manifest), keyed as "
            "in S3"
        )
    if not entries:
        shown = ", ".join(f.name for f in files)
        raise UserError(f"channel {channel!r}: the manifest(s) {shown} have no lines")
    log.info("channel %s: %d manifest lines, label attribute %r, files in %s", channel,
             len(entries), attributes.label if attributes else None, root)
    return entries


def _reference(obj: dict[str, Any], attribute: str, what: str, where: str) -> str:
    if attribute not in obj:
        raise UserError(f"{where} has no {what} attribute {attribute!r} (it has: "
                        f"{', '.join(sorted(obj))}); label the image, drop the line, or fix "
                        "the channel's AttributeNames")
    value = obj[attribute]
    if not isinstance(value, str) or not value.strip():
        raise UserError(
            f"{where}: attribute {attribute!r} is {value!r}, not a reference to the {what}; "
            "semantic segmentation needs AttributeNames like [\"source-ref\", \"<job>-ref\"] "
            "whose second attribute is the S3 URI of a PNG mask"
        )
    return value


def color_map(metadata: Any, where: str) -> ColorMap:
    """Ground Truth's ``internal-color-map`` as (0xRRGGBB, class id) pairs; empty if absent."""
    if not isinstance(metadata, dict) or COLOR_MAP_KEY not in metadata:
        return ()
    raw = metadata[COLOR_MAP_KEY]
    fix = f"write it as {COLOR_MAP_EXAMPLE}"
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{where}: {COLOR_MAP_KEY} is {raw!r}, not an object of class id: "
                        f"colour; {fix}")
    colors: dict[int, int] = {}
    for key, entry in raw.items():
        hex_color = entry.get("hex-color") if isinstance(entry, dict) else None
        match = HEX_COLOR.fullmatch(hex_color) if isinstance(hex_color, str) else None
        if not str(key).isdigit() or not 0 <= int(key) <= 255 or match is None:
            raise UserError(f"{where}: {COLOR_MAP_KEY} entry {key!r}: {entry!r} needs a class "
                            f"id 0-255 and a 'hex-color' like '#2ca02c'; {fix}")
        color = int(match.group(1), 16)
        if colors.get(color, int(key)) != int(key):
            raise UserError(f"{where}: {COLOR_MAP_KEY} gives colour #{color:06x} to classes "
                            f"{colors[color]} and {key}; each colour must name one class")
        colors[color] = int(key)
    return tuple(sorted(colors.items()))
