"""MXNet / dmlc-core RecordIO, byte for byte: framing, the image-record header and ``.idx``.

Framing (dmlc-core ``recordio.h``), all words little-endian uint32:

    magic 0xced7230a | lrec | data | zero padding to a multiple of 4 bytes

``lrec``'s lower 29 bits are the data length, its upper 3 bits a continuation flag: 0 a whole
record, 1 the first part, 2 a middle part, 3 the last part. A writer splits a record wherever
the magic word occurs in it at an offset that is a multiple of 4 and drops those 4 bytes; a
reader joins the parts, putting the magic word back between them. A record's offset (in
``.idx``) is the offset of its first part's magic word.

Image records (MXNet ``recordio.pack``) start with a 24-byte header ``<IfQQ``: ``flag``,
``label``, ``id``, ``id2``. With ``flag`` = 0 the label is the float in the header; with
``flag`` = n > 0, n float32 labels follow the header. The image bytes come last.

``.idx`` is text, one ``key<TAB>offset`` line per record, as ``MXIndexedRecordIO`` writes it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
LENGTH_BITS = 29
MAX_LENGTH = (1 << LENGTH_BITS) - 1
FLAG_WHOLE, FLAG_START, FLAG_MIDDLE, FLAG_END = 0, 1, 2, 3

HEADER_FORMAT = "<IfQQ"
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)  # 24


class RecordIOError(Exception):
    """The bytes at ``offset`` of ``source`` are not valid RecordIO."""

    def __init__(self, source: str, offset: int, problem: str) -> None:
        super().__init__(f"{source}: byte offset {offset}: {problem}")
        self.source = source
        self.offset = offset
        self.problem = problem


def padded_length(length: int) -> int:
    """Bytes a part of ``length`` bytes occupies after its header: padded to 4."""
    return (length + 3) & ~3


# Framing -----------------------------------------------------------------------------------
def frame(payload: bytes) -> bytes:
    """The framed bytes of one record: split at aligned magic words, padded to 4 bytes."""
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"a RecordIO record holds at most {MAX_LENGTH} bytes, got {len(payload)}")
    parts = []
    start = 0
    search = 0
    while True:
        hit = payload.find(MAGIC_BYTES, search)
        if hit < 0 or hit + 4 > (len(payload) & ~3):
            break
        if hit % 4:
            search = hit + 1
            continue
        parts.append(payload[start:hit])
        start = search = hit + 4
    parts.append(payload[start:])
    out = bytearray()
    for i, part in enumerate(parts):
        if len(parts) == 1:
            flag = FLAG_WHOLE
        elif i == 0:
            flag = FLAG_START
        elif i == len(parts) - 1:
            flag = FLAG_END
        else:
            flag = FLAG_MIDDLE
        out += MAGIC_BYTES + struct.pack("<I", (flag << LENGTH_BITS) | len(part)) + part
        out += b"\0" * (padded_length(len(part)) - len(part))
    return bytes(out)


def _read_exactly(fh: BinaryIO, size: int) -> bytes:
    data = fh.read(size)
    if len(data) == size or not data:
        return data
    chunks = [data]  # pipes may return less than asked for
    got = len(data)
    while got < size:
        more = fh.read(size - got)
        if not more:
            break
        chunks.append(more)
        got += len(more)
    return b"".join(chunks)


def read_record(fh: BinaryIO, source: str, offset: int) -> tuple[bytes, int] | None:
    """Read the record starting at ``offset`` (``fh``'s position): its payload and the offset
    just after it, or None at a clean end.

    Raises ``RecordIOError`` naming ``source`` and the offset of the bad part.
    """
    pieces: list[bytes] = []
    position = offset
    while True:
        head = _read_exactly(fh, 8)
        if not head and not pieces:
            return None
        if len(head) < 8:
            raise RecordIOError(source, position, "truncated record header (the file ends "
                                "inside a record; was the upload or im2rec interrupted?)")
        magic, lrec = struct.unpack("<II", head)
        if magic != MAGIC:
            raise RecordIOError(source, position, f"expected the RecordIO magic number "
                                f"0x{MAGIC:08x}, found 0x{magic:08x}; this is not an MXNet "
                                "RecordIO file, or it is corrupt")
        flag, length = lrec >> LENGTH_BITS, lrec & MAX_LENGTH
        expected = (FLAG_WHOLE, FLAG_START) if not pieces else (FLAG_MIDDLE, FLAG_END)
        if flag not in expected:
            raise RecordIOError(source, position, f"continuation flag {flag} where "
                                f"{' or '.join(map(str, expected))} was expected; the file "
                                "is corrupt")
        body = _read_exactly(fh, padded_length(length))
        if len(body) < padded_length(length):
            raise RecordIOError(source, position, f"truncated record: {length} bytes "
                                f"announced, {len(body)} present")
        pieces.append(body[:length])
        position += 8 + padded_length(length)
        if flag in (FLAG_WHOLE, FLAG_END):
            return MAGIC_BYTES.join(pieces), position


def iter_records(fh: BinaryIO, source: str, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, payload)`` for every record from ``fh``'s position to its end.

    Works on pipes: it only reads forward and counts offsets itself.
    """
    while True:
        result = read_record(fh, source, offset)
        if result is None:
            return
        payload, after = result
        yield offset, payload
        offset = after


# Image records -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRecord:
    flag: int
    label: float | tuple[float, ...]  # one float (flag 0) or ``flag`` floats
    id: int
    id2: int
    image: bytes


def pack_image(labels: float | list[float] | tuple[float, ...], image: bytes, record_id: int,
               id2: int = 0) -> bytes:
    """MXNet ``recordio.pack``: a number gives flag 0, a sequence flag = its length."""
    if isinstance(labels, (int, float)):
        return struct.pack(HEADER_FORMAT, 0, float(labels), record_id, id2) + image
    values = [float(v) for v in labels]
    header = struct.pack(HEADER_FORMAT, len(values), 0.0, record_id, id2)
    return header + struct.pack(f"<{len(values)}f", *values) + image


def unpack_image(payload: bytes, source: str, offset: int) -> ImageRecord:
    if len(payload) < HEADER_SIZE:
        raise RecordIOError(source, offset, f"record of {len(payload)} bytes is shorter than "
                            f"the {HEADER_SIZE}-byte image header; not an image record")
    flag, label, record_id, id2 = struct.unpack_from(HEADER_FORMAT, payload)
    if flag == 0:
        return ImageRecord(0, label, record_id, id2, payload[HEADER_SIZE:])
    end = HEADER_SIZE + 4 * flag
    if end > len(payload):
        raise RecordIOError(source, offset, f"image header announces {flag} labels but the "
                            f"record has only {len(payload)} bytes; not an image record")
    labels = struct.unpack_from(f"<{flag}f", payload, HEADER_SIZE)
    return ImageRecord(flag, tuple(labels), record_id, id2, payload[end:])


# .idx files --------------------------------------------------------------------------------
def read_index(path: Path) -> list[tuple[int, int]]:
    """``(key, offset)`` pairs of an ``.idx`` file, in file order."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            key, offset = int(fields[0]), int(fields[1])
        except (IndexError, ValueError):
            raise RecordIOError(str(path), 0, f"line {number} is {line[:80]!r}, expected "
                                "'key<TAB>offset'") from None
        entries.append((key, offset))
    return entries


class RecordWriter:
    """Write records (and optionally an ``.idx``) exactly as ``MXIndexedRecordIO`` does."""

    def __init__(self, rec_path: Path, idx_path: Path | None = None) -> None:
        self._rec = open(rec_path, "wb")  # noqa: SIM115 - closed in close()
        self._idx = open(idx_path, "w") if idx_path else None  # noqa: SIM115
        self.offset = 0

    def write(self, payload: bytes, key: int | None = None) -> int:
        """Append one record; returns its offset (written to ``.idx`` under ``key``)."""
        offset = self.offset
        framed = frame(payload)
        self._rec.write(framed)
        self.offset += len(framed)
        if self._idx is not None:
            if key is None:
                raise ValueError("a key is needed for every record of an indexed file")
            self._idx.write(f"{key}\t{offset}\n")
        return offset

    def close(self) -> None:
        self._rec.close()
        if self._idx is not None:
            self._idx.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
