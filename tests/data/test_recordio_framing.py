"""RecordIO framing as dmlc-core writes it: magic splits, empty records, padding, errors."""

from __future__ import annotations

import io
import struct

import pytest

from train.data.recordio import (
    HEADER_SIZE,
    MAGIC,
    MAGIC_BYTES,
    RecordIOError,
    RecordWriter,
    frame,
    iter_records,
    pack_image,
    read_index,
    read_record,
    unpack_image,
)


def lrec(flag: int, length: int) -> bytes:
    return struct.pack("<I", (flag << 29) | length)


def read_all(data: bytes) -> list[tuple[int, bytes]]:
    return list(iter_records(io.BytesIO(data), "test.rec"))


@pytest.mark.parametrize("length", range(10))
def test_lengths_not_a_multiple_of_4_are_zero_padded(length):
    payload = bytes(range(1, length + 1))
    framed = frame(payload)
    padded = (length + 3) // 4 * 4
    assert framed == MAGIC_BYTES + lrec(0, length) + payload + b"\0" * (padded - length)
    # Two records back to back: the second starts at an aligned offset and both read back.
    assert read_all(framed + frame(b"next")) == [(0, payload), (len(framed), b"next")]


def test_empty_records_are_a_header_alone():
    framed = frame(b"")
    assert framed == MAGIC_BYTES + lrec(0, 0)
    assert read_all(framed * 3 + frame(b"x")) == [(0, b""), (8, b""), (16, b""), (24, b"x")]


def test_magic_at_an_aligned_offset_splits_the_record():
    payload = b"abcd" + MAGIC_BYTES + b"efgh"
    framed = frame(payload)
    assert framed == (MAGIC_BYTES + lrec(1, 4) + b"abcd"
                      + MAGIC_BYTES + lrec(3, 4) + b"efgh")
    assert read_all(framed) == [(0, payload)]


def test_several_magics_give_start_middle_and_end_parts():
    payload = MAGIC_BYTES + b"ab\0\0" + MAGIC_BYTES + b"xyz"  # at offsets 0 and 8
    framed = frame(payload)
    assert framed == (MAGIC_BYTES + lrec(1, 0)
                      + MAGIC_BYTES + lrec(2, 4) + b"ab\0\0"
                      + MAGIC_BYTES + lrec(3, 3) + b"xyz\0")
    assert read_all(framed + frame(b"after")) == [(0, payload), (len(framed), b"after")]


def test_magic_ending_the_payload_leaves_an_empty_last_part():
    payload = b"abcd" + MAGIC_BYTES
    framed = frame(payload)
    assert framed == MAGIC_BYTES + lrec(1, 4) + b"abcd" + MAGIC_BYTES + lrec(3, 0)
    assert read_all(framed) == [(0, payload)]


def test_magic_at_an_unaligned_offset_is_left_alone():
    payload = b"ab" + MAGIC_BYTES + b"cd"
    assert frame(payload) == MAGIC_BYTES + lrec(0, 8) + payload
    assert read_all(frame(payload)) == [(0, payload)]


def test_writer_index_offsets_point_at_each_record(tmp_path):
    payloads = [b"", b"abc", b"abcd" + MAGIC_BYTES + b"e", bytes(range(7))]
    with RecordWriter(tmp_path / "x.rec", tmp_path / "x.idx") as writer:
        for key, payload in enumerate(payloads, start=10):
            writer.write(payload, key=key)
    index = read_index(tmp_path / "x.idx")
    assert [k for k, _ in index] == [10, 11, 12, 13]
    with open(tmp_path / "x.rec", "rb") as fh:
        for (_, offset), payload in zip(index, payloads, strict=True):
            fh.seek(offset)
            assert read_record(fh, "x.rec", offset)[0] == payload
        fh.seek(0)
        assert [o for o, _ in iter_records(fh, "x.rec")] == [o for _, o in index]


def test_image_header_single_and_multi_label():
    single = pack_image(7.0, b"JPEG", record_id=149)
    assert single[:HEADER_SIZE] == struct.pack("<IfQQ", 0, 7.0, 149, 0)
    record = unpack_image(single, "x", 0)
    assert (record.flag, record.label, record.id, record.image) == (0, 7.0, 149, b"JPEG")

    multi = pack_image([2.0, 0.0, 1.0], b"PNG", record_id=46)
    assert multi[:HEADER_SIZE] == struct.pack("<IfQQ", 3, 0.0, 46, 0)
    record = unpack_image(multi, "x", 0)
    assert (record.flag, record.label, record.image) == (3, (2.0, 0.0, 1.0), b"PNG")


@pytest.mark.parametrize(("data", "offset", "problem"), [
    (frame(b"abcdefgh")[:6], 0, "truncated record header"),
    (frame(b"abcdefgh")[:12], 0, "truncated record: 8 bytes announced, 4 present"),
    (frame(b"ok") + b"\x01\x02\x03\x04" + lrec(0, 0), 12, "magic number 0xced7230a"),
    (MAGIC_BYTES + lrec(2, 0), 0, "continuation flag 2 where 0 or 1 was expected"),
    (MAGIC_BYTES + lrec(1, 0) + MAGIC_BYTES + lrec(0, 0), 8,
     "continuation flag 0 where 2 or 3 was expected"),
    (MAGIC_BYTES + lrec(1, 4) + b"abcd", 12, "truncated record header"),
], ids=["cut-header", "cut-body", "bad-magic", "starts-mid-record", "unfinished-split",
        "missing-last-part"])
def test_corrupt_or_truncated_data_names_the_file_and_offset(data, offset, problem):
    with pytest.raises(RecordIOError) as info:
        read_all(data)
    assert info.value.offset == offset
    assert str(info.value).startswith(f"test.rec: byte offset {offset}: ")
    assert problem in str(info.value)


def test_magic_constant_is_dmlc_cores():
    assert MAGIC == 0xCED7230A and MAGIC_BYTES == b"\x0a\x23\xd7\xce"
