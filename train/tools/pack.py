"""``pack`` and ``index``: image folders and ``.lst`` lists to MXNet RecordIO, like im2rec.

``pack ROOT PREFIX`` lists ``ROOT`` the way ``im2rec.py --list --recursive`` does (directories
walked in sorted order, each directory holding images gets the next label), writes
``PREFIX.lst`` (or ``PREFIX_train.lst`` / ``PREFIX_val.lst`` with ``--train-ratio``) and packs
each list into ``.rec`` + ``.idx``. ``pack ROOT PREFIX --lst LIST`` packs an existing list.
Images are stored as they are unless ``--resize`` or ``--encode`` asks for re-encoding.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import struct
from pathlib import Path

from train.data.lst import ListEntry, parse_lst, write_lst_line
from train.data.recordio import RecordWriter, iter_records, pack_image
from train.errors import UserError

DEFAULT_EXTS = (".jpg", ".jpeg", ".png")


def add_arguments(sub: argparse._SubParsersAction) -> None:
    pack = sub.add_parser("pack", help="pack an image folder or a .lst list into .rec + .idx",
                          description=__doc__)
    pack.add_argument("root", type=Path, help="folder holding the images (class subfolders)")
    pack.add_argument("prefix", type=Path, help="output prefix: PREFIX.lst, .rec, .idx")
    pack.add_argument("--lst", type=Path, help="pack this list instead of listing ROOT")
    pack.add_argument("--list-only", action="store_true", help="write the .lst file(s) only")
    pack.add_argument("--train-ratio", type=float, default=1.0,
                      help="split into PREFIX_train and PREFIX_val (default 1.0: no split)")
    pack.add_argument("--seed", type=int, default=100, help="shuffle seed (im2rec uses 100)")
    pack.add_argument("--no-shuffle", action="store_true", help="keep the sorted order")
    pack.add_argument("--exts", nargs="+", default=list(DEFAULT_EXTS),
                      help="image suffixes to list (default: .jpg .jpeg .png)")
    pack.add_argument("--pack-label", action="store_true",
                      help="store every label column of the list (multi-label records)")
    pack.add_argument("--resize", type=int, default=0,
                      help="re-encode with the shorter side resized to this many pixels")
    pack.add_argument("--encode", choices=("none", "jpg", "png"), default="none",
                      help="re-encode images (default none: store the files' own bytes)")
    pack.add_argument("--quality", type=int, default=95, help="JPEG quality when re-encoding")
    pack.set_defaults(run=run_pack)

    index = sub.add_parser("index", help="write the .idx of a .rec file (key = record id)")
    index.add_argument("rec", type=Path)
    index.set_defaults(run=run_index)


def list_images(root: Path, exts: list[str]) -> list[ListEntry]:
    """im2rec's recursive listing: one label per directory that holds images."""
    suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in exts}
    labels: dict[str, int] = {}
    entries = []
    for directory, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if path.suffix.lower() not in suffixes or not path.is_file():
                continue
            label = labels.setdefault(directory, len(labels))
            relative = path.relative_to(root).as_posix()
            entries.append(ListEntry(len(entries), (float(label),), relative, relative))
    if not entries:
        raise UserError(f"no images ({', '.join(sorted(suffixes))}) under {root}")
    return entries


def write_lst(path: Path, entries: list[ListEntry]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for e in entries:
            fh.write(write_lst_line(e.index, e.labels, e.path))


def pack_list(entries: list[ListEntry], root: Path, prefix: Path, args: argparse.Namespace
              ) -> tuple[int, list[str]]:
    """Write PREFIX.rec and PREFIX.idx; returns (records written, problems)."""
    problems = []
    written = 0
    with RecordWriter(_with(prefix, ".rec"), _with(prefix, ".idx")) as writer:
        for entry in entries:
            path = root / entry.path
            try:
                image = _image_bytes(path, args)
            except OSError as exc:
                problems.append(f"{entry.where}: {entry.path}: {exc}")
                continue
            label = list(entry.labels) if args.pack_label and len(entry.labels) > 1 \
                else entry.labels[0]
            writer.write(pack_image(label, image, entry.index), key=entry.index)
            written += 1
    return written, problems


def _with(prefix: Path, suffix: str) -> Path:
    return prefix.parent / (prefix.name + suffix)


def _image_bytes(path: Path, args: argparse.Namespace) -> bytes:
    data = path.read_bytes()
    if args.encode == "none" and not args.resize:
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("RGB")
        if args.resize:
            scale = args.resize / min(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.BICUBIC)
        out = io.BytesIO()
        if args.encode == "png":
            img.save(out, "PNG")
        else:
            img.save(out, "JPEG", quality=args.quality)
    return out.getvalue()


def run_pack(args: argparse.Namespace) -> int:
    args.prefix.parent.mkdir(parents=True, exist_ok=True)
    if args.lst is not None:
        lists = {args.prefix: list(parse_lst(args.lst))}
    else:
        entries = list_images(args.root, args.exts)
        if not args.no_shuffle:
            random.Random(args.seed).shuffle(entries)
        if args.train_ratio >= 1.0:
            lists = {args.prefix: entries}
        else:
            cut = int(len(entries) * args.train_ratio)
            lists = {Path(f"{args.prefix}_train"): entries[:cut],
                     Path(f"{args.prefix}_val"): entries[cut:]}
        for prefix, chunk in lists.items():
            write_lst(_with(prefix, ".lst"), chunk)
            print(f"wrote {_with(prefix, '.lst')} ({len(chunk)} images)")
    if args.list_only:
        return 0
    failed = False
    for prefix, chunk in lists.items():
        written, problems = pack_list(chunk, args.root, prefix, args)
        print(f"wrote {_with(prefix, '.rec')} and .idx ({written} records)")
        for problem in problems[:20]:
            print(f"  skipped {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


def run_index(args: argparse.Namespace) -> int:
    idx = args.rec.with_suffix(".idx")
    count = 0
    with open(args.rec, "rb") as fh, open(idx, "w") as out:
        for offset, payload in iter_records(fh, str(args.rec)):
            record_id = struct.unpack_from("<Q", payload, 8)[0] if len(payload) >= 16 else count
            out.write(f"{record_id}\t{offset}\n")
            count += 1
    print(f"wrote {idx} ({count} records)")
    return 0
