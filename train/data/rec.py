"""MXNet RecordIO image files in File mode: ``<channel>/*.rec``, each with an optional ``.idx``.

With ``name.idx`` beside ``name.rec`` the records are found by offset (only their headers are
read up front); without one the file is scanned once from start to end. Every record's header is
checked before training starts, so a truncated or corrupt file fails the job at once, naming the
file and byte offset, instead of hours later. With an ``.idx`` the indexed records must also
tile the file exactly, from byte 0 to its end: trailing bytes, a gap or an overlap (a stale
index, an interrupted append) fail the job just as they do when the file is scanned.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from train.data.base import RawSample, Reader, Target
from train.data.labels import LabelSpec, RawLabel, decode_all
from train.data.recordio import (
    FLAG_START,
    FLAG_WHOLE,
    HEADER_FORMAT,
    HEADER_SIZE,
    LENGTH_BITS,
    MAGIC,
    MAX_LENGTH,
    RecordIOError,
    iter_records,
    padded_length,
    read_index,
    read_record,
    unpack_image,
)
from train.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordRef:
    file: int  # index into RecordFileReader.files
    offset: int
    record_id: int


class RecordFileReader(Reader):
    def __init__(self, root: Path, channel: str, labels: LabelSpec, *, rank: int = 0,
                 num_replicas: int = 1) -> None:
        """Index every ``.rec`` file under ``root``; keep every ``num_replicas``-th record
        starting at ``rank`` (distributed training without S3 sharding)."""
        if not root.is_dir():
            raise UserError(f"channel {channel!r} not found: expected a folder {root} holding "
                            "a .rec file (ContentType application/x-recordio)")
        self.files = sorted(p for p in root.rglob("*.rec") if p.is_file())
        if not self.files:
            raise UserError(
                f"channel {channel!r} at {root} holds no .rec file; its ContentType is "
                "application/x-recordio, which expects MXNet RecordIO files (make them with "
                "`python -m train.tools pack`, or use application/x-image for images)"
            )
        refs: list[RecordRef] = []
        raw: list[tuple[str, RawLabel]] = []
        for number, path in enumerate(self.files):
            try:
                for offset, record_id, label in _headers(path):
                    refs.append(RecordRef(number, offset, record_id))
                    raw.append((f"{path.name}: record id {record_id} at byte offset {offset}",
                                label))
            except RecordIOError as exc:
                raise UserError(f"channel {channel!r}: {exc}; re-create the file (e.g. with "
                                "im2rec or `python -m train.tools pack`)") from None
        self._refs = refs[rank::num_replicas]
        targets, num_classes = decode_all(raw, labels)
        self._targets = targets[rank::num_replicas]
        self.num_classes = num_classes
        self.class_names = [str(i) for i in range(num_classes)]
        self._handles: dict[int, BinaryIO] = {}
        self._pid = os.getpid()
        log.info("channel %s: %d records in %s", channel, len(self._refs),
                 ", ".join(p.name for p in self.files))

    def __len__(self) -> int:
        return len(self._refs)

    def read(self, index: int) -> RawSample:
        ref = self._refs[index]
        path = self.files[ref.file]
        fh = self._handle(ref.file)
        fh.seek(ref.offset)
        try:
            result = read_record(fh, str(path), ref.offset)
            if result is None:
                raise RecordIOError(str(path), ref.offset, "no record here (file shrank?)")
            record = unpack_image(result[0], str(path), ref.offset)
        except RecordIOError as exc:
            raise OSError(str(exc)) from None
        name = f"{path.name} record {record.id}"
        return RawSample(name=name, data=record.image, target=self._targets[index])

    def targets(self) -> list[Target]:
        return list(self._targets)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}}

    def _handle(self, file: int) -> BinaryIO:
        if self._pid != os.getpid():  # a forked worker: never share the parent's offsets
            self._handles, self._pid = {}, os.getpid()
        if file not in self._handles:
            self._handles[file] = open(self.files[file], "rb")  # noqa: SIM115
        return self._handles[file]


def _headers(path: Path) -> Iterator[tuple[int, int, RawLabel]]:
    """``(offset, record id, label)`` of every record, through ``.idx`` when there is one."""
    idx = path.with_suffix(".idx")
    if not idx.is_file():
        log.info("no %s beside %s: scanning the whole file (write one with `python -m "
                 "train.tools index %s`)", idx.name, path.name, path.name)
        with open(path, "rb") as fh:
            for offset, payload in iter_records(fh, str(path)):
                record = unpack_image(payload, str(path), offset)
                yield offset, record.id, record.label
        return
    size = path.stat().st_size
    spans: list[tuple[int, int]] = []
    with open(path, "rb") as fh:
        for _key, offset in read_index(idx):
            if not 0 <= offset < size:
                raise RecordIOError(str(idx), 0, f"offset {offset} is outside {path.name} "
                                    f"({size} bytes); the .idx belongs to another file")
            record_id, label, end = _header_at(fh, path, offset, size)
            spans.append((offset, end))
            yield offset, record_id, label
    _check_coverage(spans, path, idx, size)


def _check_coverage(spans: list[tuple[int, int]], path: Path, idx: Path, size: int) -> None:
    """The indexed records must cover the whole file, each byte once, as a scan would read it."""
    rebuild = f"if the .rec is whole, rebuild it with `python -m train.tools index {path.name}`"
    position = 0
    for start, end in sorted(spans):
        if start < position:
            raise RecordIOError(str(idx), 0, f"the record at byte offset {start} overlaps the "
                                f"one before it (which ends at {position}): the .idx lists a "
                                f"record twice or points into one; {rebuild}")
        if start > position:
            raise RecordIOError(str(path), position, f"bytes {position}-{start - 1} are not "
                                f"any record that {idx.name} lists (a stale index?); {rebuild}")
        position = end
    if position != size:
        raise RecordIOError(str(path), position, f"{size - position} bytes after the last "
                            f"indexed record are not a record that {idx.name} lists (trailing "
                            "data: an interrupted upload or append, or an index of an older "
                            "file)")


def _header_at(fh: BinaryIO, path: Path, offset: int, size: int) -> tuple[int, RawLabel, int]:
    """Record id, label and end offset of the record at ``offset``, reading only its first
    bytes."""
    fh.seek(offset)
    head = fh.read(8)
    if len(head) < 8:
        raise RecordIOError(str(path), offset, "truncated record header")
    magic, lrec = struct.unpack("<II", head)
    if magic != MAGIC:
        raise RecordIOError(str(path), offset, f"expected the RecordIO magic number "
                            f"0x{MAGIC:08x}, found 0x{magic:08x} (does the .idx belong to "
                            "this file?)")
    flag, length = lrec >> LENGTH_BITS, lrec & MAX_LENGTH
    if flag not in (FLAG_WHOLE, FLAG_START):
        raise RecordIOError(str(path), offset, f"continuation flag {flag} at a record start; "
                            "the .idx points into the middle of a record")
    if flag == FLAG_WHOLE and offset + 8 + padded_length(length) > size:
        raise RecordIOError(str(path), offset, f"truncated record: {length} bytes announced, "
                            f"{size - offset - 8} present")
    if flag == FLAG_START or length < HEADER_SIZE:
        fh.seek(offset)  # rare: split or short record; read it whole
        result = read_record(fh, str(path), offset)
        if result is None:
            raise RecordIOError(str(path), offset, "no record here")
        record = unpack_image(result[0], str(path), offset)
        return record.id, record.label, result[1]
    end = offset + 8 + padded_length(length)
    header = fh.read(HEADER_SIZE)
    count, label, record_id, _ = struct.unpack(HEADER_FORMAT, header)
    if count == 0:
        return record_id, label, end
    if HEADER_SIZE + 4 * count > length:
        raise RecordIOError(str(path), offset, f"image header announces {count} labels but "
                            f"the record has only {length} bytes; not an image record")
    return record_id, struct.unpack(f"<{count}f", fh.read(4 * count)), end
