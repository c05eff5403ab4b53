"""Ground Truth augmented manifests: JSON Lines of an image reference and a label attribute.

    {"source-ref": "s3://bucket/IMG_0085.JPG", "lab1-labeling-job": 0,
     "lab1-labeling-job-metadata": {"class-name": "RH", ...}}

The label attribute holds a class index (Ground Truth single-label), a list of class indexes
(``label-format=class-id``, Ground Truth multi-label) or a 0/1 list (``multi-hot``). Class names
come from ``<label attribute>-metadata``: ``class-name`` (single-label) or ``class-map``
(multi-label, ``{"0": "cat", ...}``).

Which attributes: the channel's ``AttributeNames`` (image first, label second, as the built-in
algorithm requires); else the hyperparameter ``label_attribute``; else the one attribute of the
first line that is neither the image reference (``source-ref`` or ``*-ref``) nor metadata.

In File mode (``ManifestReader``) each image is looked up with ``train.data.source_ref``; Pipe
mode streams the image bytes themselves (``train.data.pipe``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.data.base import FileListReader
from train.data.labels import LabelSpec, RawLabel, decode_all
from train.data.source_ref import SourceResolver
from train.errors import UserError

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".manifest", ".jsonl")
DEFAULT_IMAGE_ATTRIBUTE = "source-ref"
METADATA_SUFFIX = "-metadata"


@dataclass(frozen=True)
class Attributes:
    image: str
    label: str


def manifest_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES)


def read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line; a bad line is a ``UserError``."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            yield number, parse_line(line, f"{path.name}, line {number}")


def parse_line(line: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where} is not JSON ({exc.msg} at column {exc.colno}): "
                        f"{line.strip()[:80]!r}; each line of a manifest is one JSON "
                        "object") from None
    if not isinstance(value, dict):
        raise UserError(f"{where} is a JSON {type(value).__name__}, not an object; each line "
                        "of a manifest is one JSON object like {\"source-ref\": ..., ...}")
    return value


def choose_attributes(first: dict[str, Any], attribute_names: tuple[str, ...],
                      label_attribute: str | None, where: str) -> Attributes:
    if attribute_names:
        if len(attribute_names) < 2:
            raise UserError(f"AttributeNames {list(attribute_names)} must list the image "
                            "reference first and the label attribute second")
        return Attributes(attribute_names[0], attribute_names[1])
    refs = [k for k in first if k == DEFAULT_IMAGE_ATTRIBUTE or k.endswith("-ref")]
    image = DEFAULT_IMAGE_ATTRIBUTE if DEFAULT_IMAGE_ATTRIBUTE in first else (
        refs[0] if len(refs) == 1 else None)
    if image is None:
        raise UserError(f"{where}: no image reference attribute ('source-ref' or one ending "
                        f"in '-ref') among {sorted(first)}; set AttributeNames")
    if label_attribute:
        return Attributes(image, label_attribute)
    candidates = [k for k in first if k != image and not k.endswith(METADATA_SUFFIX)]
    if len(candidates) != 1:
        raise UserError(f"{where}: cannot tell which attribute is the label among "
                        f"{candidates or sorted(first)}; set the hyperparameter "
                        "label_attribute (or the channel's AttributeNames)")
    return Attributes(image, candidates[0])


def label_value(value: Any, attribute: str, where: str) -> RawLabel:
    """A label attribute's JSON value as numbers: 3, "3", [0, 2], ["1", "0"]."""
    if isinstance(value, list):
        return [_number(v, attribute, where) for v in value]
    return _number(value, attribute, where)


def line_label(obj: dict[str, Any], attributes: Attributes, where: str) -> RawLabel:
    if attributes.label not in obj:
        raise UserError(f"{where} has no label attribute {attributes.label!r} (it has: "
                        f"{', '.join(sorted(obj))}); label the image, drop the line, or fix "
                        "AttributeNames / label_attribute")
    return label_value(obj[attributes.label], attributes.label, where)


def class_names_of(obj: dict[str, Any], attributes: Attributes, label: RawLabel
                   ) -> dict[int, str]:
    """Class names Ground Truth put in ``<label>-metadata`` (empty if none)."""
    meta = obj.get(attributes.label + METADATA_SUFFIX)
    if not isinstance(meta, dict):
        return {}
    names: dict[int, str] = {}
    class_map = meta.get("class-map")
    if isinstance(class_map, dict):
        for key, name in class_map.items():
            if str(key).isdigit():
                names[int(key)] = str(name)
    elif "class-name" in meta and isinstance(label, (int, float)) and float(label).is_integer():
        names[int(label)] = str(meta["class-name"])
    return names


def _number(value: Any, attribute: str, where: str) -> float | int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip()) if "." in value else int(value.strip())
        except ValueError:
            pass
    raise UserError(f"{where}: label attribute {attribute!r} is {value!r}; expected a class "
                    "index, a list of class indexes or a 0/1 list")


class ManifestReader(FileListReader):
    """File mode: manifests in one folder, images in another (see ``train.data.source_ref``)."""

    def __init__(self, folder: Path, channel: str, labels: LabelSpec, *, images: Path,
                 attribute_names: tuple[str, ...] = (), label_attribute: str | None = None,
                 source_ref_prefix: str | None = None,
                 class_names: list[str] | None = None) -> None:
        files = manifest_files(folder)
        if not files:
            raise UserError(f"channel {channel!r} at {folder} holds no manifest (a file ending "
                            f"in {' or '.join(MANIFEST_SUFFIXES)})")
        resolver = SourceResolver(images, source_ref_prefix)
        self.root = images
        self._paths: list[str] = []
        raw: list[tuple[str, RawLabel]] = []
        names: dict[int, str] = {}
        missing: list[str] = []
        attributes: Attributes | None = None
        for path in files:
            for number, obj in read_lines(path):
                where = f"{path.name}, line {number}"
                if attributes is None:
                    attributes = choose_attributes(obj, attribute_names, label_attribute, where)
                if attributes.image not in obj:
                    raise UserError(f"{where} has no image attribute {attributes.image!r}")
                label = line_label(obj, attributes, where)
                relative = resolver.resolve(obj[attributes.image], where)
                if relative is None:
                    missing.append(f"{where}: {obj[attributes.image]}")
                    continue
                names.update(class_names_of(obj, attributes, label))
                self._paths.append(relative)
                raw.append((where, label))
        if missing:
            raise UserError(
                f"channel {channel!r}: {len(missing)} image(s) of the manifest are not in "
                f"{images} (e.g. {'; '.join(missing[:3])}). Put the images in a channel named "
                f"'{channel}_images' or 'images' (or beside the manifest) keyed as in S3, or "
                "set source_ref_prefix to the S3 prefix that channel was copied from"
            )
        if not raw:
            shown = ", ".join(f.name for f in files)
            raise UserError(f"channel {channel!r}: the manifest(s) {shown} have no lines")
        if class_names is not None:
            labels = labels.with_num_classes(len(class_names))
        self._targets, num_classes = decode_all(raw, labels)
        self.class_names = class_names or [names.get(i, str(i)) for i in range(num_classes)]
        log.info("channel %s: %d manifest lines, label attribute %r, images in %s", channel,
                 len(raw), attributes.label if attributes else None, images)
