"""Images plus ``.lst`` image lists, the built-in algorithm's "image format".

Images arrive in one channel (``train``), their list in a paired channel (``train_lst``); each
``.lst`` line is ``index<TAB>label[<TAB>label...]<TAB>relative/path`` as ``im2rec --list``
writes it, the path relative to the image channel. Several label columns are several labels per
image (multi-hot by default; see ``train.data.labels``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from train.data.base import FileListReader
from train.data.channels import lst_channel
from train.data.labels import LabelSpec, RawLabel, decode_all
from train.data.source_ref import reference_parts
from train.errors import UserError

log = logging.getLogger(__name__)

LST_SUFFIX = ".lst"


@dataclass(frozen=True)
class ListEntry:
    index: int
    labels: tuple[float, ...]
    path: str  # relative, '/'-separated, checked for traversal
    where: str  # "file.lst, line N"


def parse_lst(path: Path) -> Iterator[ListEntry]:
    """Every line of ``path``; a malformed line or a path leaving the folder is a UserError."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield parse_lst_line(line, f"{path.name}, line {number}")


def parse_lst_line(line: str, where: str) -> ListEntry:
    line = line.rstrip("\r\n")
    fields = [f.strip() for f in line.split("\t")]
    if len(fields) < 3:
        fields = line.split()
    if len(fields) < 3:
        raise UserError(f"{where}: {line[:80]!r} is not 'index<TAB>label<TAB>path'; a .lst "
                        "line has an index, one or more labels and a path")
    try:
        index = int(float(fields[0]))
        labels = tuple(float(v) for v in fields[1:-1])
    except ValueError:
        raise UserError(f"{where}: {line[:80]!r} is not 'index<TAB>label<TAB>path' (index and "
                        "labels must be numbers)") from None
    segments = reference_parts(fields[-1], where)
    return ListEntry(index, labels, "/".join(segments), where)


def write_lst_line(index: int, labels: tuple[float, ...] | list[float], path: str) -> str:
    """One line as ``im2rec --list`` writes it: ``%d\t`` + ``%f\t`` per label + path."""
    return f"{index}\t" + "".join(f"{v:f}\t" for v in labels) + f"{path}\n"


def lst_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob(f"*{LST_SUFFIX}") if p.is_file())


class ImageListReader(FileListReader):
    def __init__(self, images: Path, lists: Path, channel: str, labels: LabelSpec,
                 class_names: list[str] | None = None) -> None:
        files = lst_files(lists)
        if not files:
            raise UserError(f"channel {lst_channel(channel)!r} at {lists} holds no .lst "
                            "file; give one 'index<TAB>label<TAB>relative/path' list per "
                            "image channel (make one with `python -m train.tools pack "
                            "--list-only`)")
        if not images.is_dir():
            raise UserError(f"channel {channel!r} not found: expected a folder {images} with "
                            f"the images listed in {files[0].name}")
        self.root = images
        entries = [entry for path in files for entry in parse_lst(path)]
        if not entries:
            raise UserError(f"{', '.join(p.name for p in files)}: no images listed")
        missing = [e for e in entries if not (images / e.path).is_file()]
        if missing:
            shown = "; ".join(f"{e.where}: {e.path}" for e in missing[:3])
            raise UserError(f"channel {channel!r}: {len(missing)} image(s) listed in the .lst "
                            f"are not in {images} (e.g. {shown}); upload them or remove their "
                            "lines")
        raw: list[tuple[str, RawLabel]] = [
            (e.where, e.labels[0] if len(e.labels) == 1 else e.labels) for e in entries
        ]
        if class_names is not None:
            labels = labels.with_num_classes(len(class_names))
        self._targets, num_classes = decode_all(raw, labels)
        self._paths = [e.path for e in entries]
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        log.info("channel %s: %d images listed in %s", channel, len(entries),
                 ", ".join(p.name for p in files))
