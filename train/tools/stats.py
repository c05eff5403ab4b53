"""``stats``: counts per class, image sizes and problems of a dataset, before a job finds them.

PATH is a ``.rec`` file, a ``.lst`` file (images under ``--images``, default its folder), a
manifest (``.manifest``/``.jsonl``; image sizes only with ``--images``) or a class-folder tree.
Problems are collected, not fatal: unreadable lines, missing or undecodable images, labels
outside ``--num-classes``, duplicate ids. The exit status is 1 when there are any.
"""

from __future__ import annotations

import argparse
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.data.folder import IMAGE_SUFFIXES
from train.data.lst import parse_lst_line
from train.data.manifest import (
    MANIFEST_SUFFIXES,
    choose_attributes,
    class_names_of,
    line_label,
    parse_line,
)
from train.data.recordio import RecordIOError, iter_records, unpack_image
from train.data.source_ref import SourceResolver
from train.errors import UserError

MAX_PROBLEMS_SHOWN = 20


def add_arguments(sub: argparse._SubParsersAction) -> None:
    stats = sub.add_parser("stats", help="counts per class, image sizes, problems found")
    stats.add_argument("path", type=Path)
    stats.add_argument("--images", type=Path, help="image folder for .lst and manifests")
    stats.add_argument("--num-classes", type=int, help="flag labels outside 0..N-1")
    stats.add_argument("--label-attribute", help="manifest label attribute (default: detect)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of text")
    stats.set_defaults(run=run_stats)


@dataclass
class Report:
    source: str
    kind: str
    samples: int = 0
    labels: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    ids: Counter = field(default_factory=Counter)
    names: dict[int, str] = field(default_factory=dict)

    def add(self, where: str, label: Any, image: bytes | None, num_classes: int | None) -> None:
        self.samples += 1
        values = label if isinstance(label, (list, tuple)) else [label]
        for value in values:
            number = int(value) if float(value).is_integer() else value
            self.labels[number] += 1
            if num_classes is not None and not (
                isinstance(number, int) and 0 <= number < num_classes
            ):
                self.problems.append(f"{where}: label {value} outside num_classes={num_classes}")
        if image is not None:
            self.image(where, image)

    def image(self, where: str, data: bytes) -> None:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as img:
                self.sizes[f"{img.width}x{img.height}"] += 1
                self.formats[img.format or "?"] += 1
                img.verify()
        except Exception as exc:
            self.problems.append(f"{where}: not a readable image ({exc})")

    def to_dict(self) -> dict[str, Any]:
        duplicates = sorted(k for k, n in self.ids.items() if n > 1)
        problems = self.problems + ([f"duplicate ids: {duplicates[:10]}"] if duplicates else [])
        return {
            "source": self.source, "kind": self.kind, "samples": self.samples,
            "per_class": {self._name(k): v for k, v in sorted(self.labels.items(), key=_order)},
            "image_sizes": dict(self.sizes.most_common()),
            "formats": dict(self.formats.most_common()),
            "problems": problems,
        }


    def _name(self, key: Any) -> str:
        return f"{key} ({self.names[key]})" if key in self.names else str(key)


def _order(item: tuple[Any, int]) -> tuple[int, str]:
    key = item[0]
    return (0, f"{key:012d}") if isinstance(key, int) else (1, str(key))


def scan_rec(path: Path, report: Report, num_classes: int | None) -> None:
    try:
        with open(path, "rb") as fh:
            for offset, payload in iter_records(fh, path.name):
                record = unpack_image(payload, path.name, offset)
                report.ids[record.id] += 1
                report.add(f"record id {record.id} (offset {offset})", record.label,
                           record.image, num_classes)
    except RecordIOError as exc:
        report.problems.append(f"{exc} (scan stopped; {report.samples} records before it)")


def scan_lst(path: Path, images: Path, report: Report, num_classes: int | None) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}, line {number}"
        try:
            entry = parse_lst_line(line, where)
        except UserError as exc:
            report.problems.append(str(exc))
            continue
        report.ids[entry.index] += 1
        file = images / entry.path
        if not file.is_file():
            report.problems.append(f"{where}: {entry.path} is missing")
            report.add(where, entry.labels, None, num_classes)
            continue
        report.add(where, entry.labels, file.read_bytes(), num_classes)


def scan_manifest(path: Path, images: Path | None, report: Report, num_classes: int | None,
                  label_attribute: str | None) -> None:
    resolver = SourceResolver(images) if images else None
    attributes = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}, line {number}"
        try:
            obj = parse_line(line, where)
            attributes = attributes or choose_attributes(obj, (), label_attribute, where)
            label = line_label(obj, attributes, where)
            report.names.update(class_names_of(obj, attributes, label))
            ref = obj.get(attributes.image)
            report.ids[str(ref)] += 1
            data = None
            if resolver is not None:
                relative = resolver.resolve(ref, where)
                if relative is None:
                    report.problems.append(f"{where}: {ref} not found under {images}")
                else:
                    data = (images / relative).read_bytes()  # type: ignore[operator]
        except UserError as exc:
            report.problems.append(str(exc))
            continue
        report.add(where, label, data, num_classes)


def scan_folder(root: Path, report: Report, num_classes: int | None) -> None:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for label, name in enumerate(classes):
        for file in sorted((root / name).rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                report.add(file.relative_to(root).as_posix(), label, file.read_bytes(),
                           num_classes)
    report.names = dict(enumerate(classes))


def run_stats(args: argparse.Namespace) -> int:
    path: Path = args.path
    if path.is_dir():
        report = Report(str(path), "class folders")
        scan_folder(path, report, args.num_classes)
    elif path.suffix == ".rec":
        report = Report(str(path), "MXNet RecordIO")
        scan_rec(path, report, args.num_classes)
    elif path.suffix == ".lst":
        report = Report(str(path), "image list")
        scan_lst(path, args.images or path.parent, report, args.num_classes)
    elif path.suffix in MANIFEST_SUFFIXES:
        report = Report(str(path), "augmented manifest")
        scan_manifest(path, args.images, report, args.num_classes, args.label_attribute)
    else:
        raise UserError(f"{path}: expected a folder, .rec, .lst, .manifest or .jsonl")
    result = report.to_dict()
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 1 if result["problems"] else 0


def format_report(result: dict[str, Any]) -> str:
    lines = [f"{result['source']} ({result['kind']}): {result['samples']} samples, "
             f"{len(result['per_class'])} classes"]
    lines += [f"  class {name}: {count}" for name, count in result["per_class"].items()]
    if result["image_sizes"]:
        sizes = ", ".join(f"{s} ({n})" for s, n in list(result["image_sizes"].items())[:5])
        formats = ", ".join(f"{f} ({n})" for f, n in result["formats"].items())
        lines.append(f"image sizes: {sizes}; formats: {formats}")
    problems = result["problems"]
    lines.append(f"problems: {len(problems) or 'none'}")
    lines += [f"  {p}" for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return "\n".join(lines)
