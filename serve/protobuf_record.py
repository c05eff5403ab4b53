"""SageMaker's RecordIO-protobuf ``Record``, written by hand (no protobuf dependency).

Wire format of ``aws_sagemaker.Record`` (the schema behind ``sagemaker.amazon.record_pb2``):
Record.features (1) is a map<string, Value>; Value.float32_tensor (2) and Value.int32_tensor (7)
hold ``values`` (1, packed) and ``shape`` (3, packed uint64). Each record is framed the MXNet
RecordIO way: magic ``0xced7230a``, length (uint32, little endian), data padded to 4 bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

RECORDIO_MAGIC = 0xCED7230A
_LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _packed_varints(values: Sequence[int]) -> bytes:
    return b"".join(_varint(int(v)) for v in values)


def float32_tensor(values: np.ndarray) -> bytes:
    """A ``Value`` holding ``values`` (flattened, C order) with their shape."""
    data = np.ascontiguousarray(values, dtype="<f4").tobytes()
    tensor = _field(1, data) + _field(3, _packed_varints(values.shape))
    return _field(2, tensor)


def int32_tensor(values: Sequence[int]) -> bytes:
    if any(v < 0 for v in values):
        raise ValueError("only non-negative int32 values are written")
    tensor = _field(1, _packed_varints(values)) + _field(3, _packed_varints([len(values)]))
    return _field(7, tensor)


def record(features: dict[str, bytes]) -> bytes:
    """A ``Record`` whose ``features`` map holds the given encoded ``Value`` messages."""
    return b"".join(
        _field(1, _field(1, key.encode()) + _field(2, value)) for key, value in features.items()
    )


def recordio_frame(data: bytes) -> bytes:
    padding = -len(data) % 4
    return struct.pack("<II", RECORDIO_MAGIC, len(data)) + data + b"\x00" * padding
