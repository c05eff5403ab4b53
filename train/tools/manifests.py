"""``split``, ``rewrite`` and ``create-manifest``: augmented manifests for the train command.

split            seeded, label-stratified train/validation split (80/20 by default); lines are
                 copied verbatim, in their original order.
rewrite          replace text in every line (``--replace lab# lab7``), or only the image
                 references that start with a prefix (``--prefix s3://old/ s3://new/``).
create-manifest  one line per image of a class-folder tree, or of an S3 listing as
                 ``aws s3 ls --recursive s3://bucket/prefix/`` prints it.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from train.data.manifest import (
    Attributes,
    choose_attributes,
    line_label,
    parse_line,
)
from train.errors import UserError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def add_arguments(sub: argparse._SubParsersAction) -> None:
    split = sub.add_parser("split", help="split a manifest into train and validation")
    split.add_argument("manifest", type=Path)
    split.add_argument("--out-dir", type=Path, default=Path("."))
    split.add_argument("--train-ratio", type=float, default=0.8)
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--label-attribute", help="default: detected from the first line")
    split.add_argument("--names", nargs=2, default=["train.manifest", "validation.manifest"],
                       metavar=("TRAIN", "VALIDATION"))
    split.set_defaults(run=run_split)

    rewrite = sub.add_parser("rewrite", help="replace a placeholder or prefix in every line")
    rewrite.add_argument("manifest", type=Path)
    rewrite.add_argument("output", type=Path)
    rewrite.add_argument("--replace", nargs=2, action="append", default=[],
                         metavar=("OLD", "NEW"), help="replace text anywhere (repeatable)")
    rewrite.add_argument("--prefix", nargs=2, metavar=("OLD", "NEW"),
                         help="replace the start of the image reference only")
    rewrite.add_argument("--image-attribute", default="source-ref")
    rewrite.set_defaults(run=run_rewrite)

    create = sub.add_parser("create-manifest", help="a manifest from a folder or S3 listing")
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--folder", type=Path, help="class folders: FOLDER/<class>/<image>")
    source.add_argument("--s3-listing", type=Path,
                        help="output of `aws s3 ls --recursive s3://bucket/prefix/`")
    create.add_argument("output", type=Path)
    create.add_argument("--s3-prefix", default="",
                        help="s3://bucket/prefix/ the images live under (needed with "
                             "--s3-listing; with --folder, default: relative references)")
    create.add_argument("--label-attribute", default="class")
    create.set_defaults(run=run_create)


def _lines(path: Path) -> list[tuple[int, str, dict]]:
    with open(path, encoding="utf-8") as fh:
        return [(n, line, parse_line(line, f"{path.name}, line {n}"))
                for n, line in enumerate(fh, start=1) if line.strip()]


def _stratum(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def split_lines(lines: list[tuple[int, str, dict]], attributes: Attributes, ratio: float,
                seed: int, source: str) -> tuple[list[str], list[str]]:
    groups: dict[object, list[int]] = defaultdict(list)
    for i, (number, _, obj) in enumerate(lines):
        groups[_stratum(line_label(obj, attributes, f"{source}, line {number}"))].append(i)
    rng = random.Random(seed)
    train: set[int] = set()
    for key in sorted(groups, key=repr):
        members = groups[key]
        rng.shuffle(members)
        count = round(len(members) * ratio)
        if len(members) > 1:  # both sides get each label when they can
            count = min(max(count, 1), len(members) - 1)
        train.update(members[:count])
    chosen = [line for i, (_, line, _) in enumerate(lines) if i in train]
    rest = [line for i, (_, line, _) in enumerate(lines) if i not in train]
    return chosen, rest


def run_split(args: argparse.Namespace) -> int:
    if not 0.0 < args.train_ratio < 1.0:
        raise UserError(f"--train-ratio {args.train_ratio} must be between 0 and 1")
    lines = _lines(args.manifest)
    if not lines:
        raise UserError(f"{args.manifest} has no lines")
    attributes = choose_attributes(lines[0][2], (), args.label_attribute,
                                   f"{args.manifest.name}, line {lines[0][0]}")
    train, validation = split_lines(lines, attributes, args.train_ratio, args.seed,
                                    args.manifest.name)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, chosen in zip(args.names, (train, validation), strict=True):
        (args.out_dir / name).write_text("".join(_ending(line) for line in chosen),
                                         encoding="utf-8")
        print(f"wrote {args.out_dir / name} ({len(chosen)} lines)")
    return 0


def _ending(line: str) -> str:
    return line if line.endswith("\n") else line + "\n"


def run_rewrite(args: argparse.Namespace) -> int:
    if not args.replace and not args.prefix:
        raise UserError("give --replace OLD NEW and/or --prefix OLD NEW")
    changed = 0
    out = []
    for number, line, _ in _lines(args.manifest):
        new = line
        for old, replacement in args.replace:
            new = new.replace(old, replacement)
        obj = parse_line(new, f"{args.output.name}, line {number} (after --replace)")
        if args.prefix:
            ref = obj.get(args.image_attribute)
            old_prefix, new_prefix = args.prefix
            if isinstance(ref, str) and ref.startswith(old_prefix):
                obj[args.image_attribute] = new_prefix + ref[len(old_prefix):]
                new = json.dumps(obj) + "\n"
        changed += new != line
        out.append(_ending(new))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("".join(out), encoding="utf-8")
    print(f"wrote {args.output} ({len(out)} lines, {changed} changed)")
    return 0


def _class_line(reference: str, class_name: str, class_id: int, attribute: str) -> str:
    return json.dumps({
        "source-ref": reference,
        attribute: class_id,
        f"{attribute}-metadata": {"class-name": class_name,
                                  "type": "groundtruth/image-classification"},
    }) + "\n"


def _s3_keys(listing: Path, prefix: str) -> list[str]:
    """Keys below ``prefix`` from ``aws s3 ls --recursive`` lines (date time size key)."""
    parts = urlsplit(prefix)
    if parts.scheme != "s3" or not parts.netloc:
        raise UserError(f"--s3-prefix {prefix!r} must look like s3://bucket/prefix/")
    key_prefix = parts.path.lstrip("/")
    keys = []
    for line in listing.read_text(encoding="utf-8").splitlines():
        fields = line.split(None, 3)
        if len(fields) == 4 and fields[2].isdigit() and fields[3].startswith(key_prefix):
            keys.append(fields[3][len(key_prefix):].lstrip("/"))
    return keys


def run_create(args: argparse.Namespace) -> int:
    if args.folder is not None:
        relative = sorted(p.relative_to(args.folder).as_posix()
                          for p in args.folder.rglob("*") if p.is_file())
    else:
        if not args.s3_prefix:
            raise UserError("--s3-listing needs --s3-prefix s3://bucket/prefix/")
        relative = _s3_keys(args.s3_listing, args.s3_prefix)
    images = [r for r in relative if "/" in r and Path(r).suffix.lower() in IMAGE_EXTS]
    skipped = len(relative) - len(images)
    if not images:
        raise UserError("no images in class folders (<class>/<image>) found")
    classes = sorted({r.split("/", 1)[0] for r in images})
    ids = {name: i for i, name in enumerate(classes)}
    prefix = args.s3_prefix.rstrip("/") + "/" if args.s3_prefix else ""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as out:
        for r in images:
            name = r.split("/", 1)[0]
            out.write(_class_line(prefix + r, name, ids[name], args.label_attribute))
    print(f"wrote {args.output} ({len(images)} lines, {len(classes)} classes: "
          f"{', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}); "
          f"{skipped} other files skipped")
    return 0
