"""Request decoders, one per Content-Type: body bytes -> the images it carries.

Decoding only unpacks the envelope (base64, JSON, .npy) and checks each image's magic bytes or
array shape; pixels are decoded later, a few images at a time, by ``serve.model`` so that a big
batch never holds every full-size image in memory at once.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from serve import contract
from serve.errors import BadInput
from serve.images import MAX_IMAGE_PIXELS

# Still-encoded image bytes, or an HWC uint8 array.
ImageInput = bytes | np.ndarray

# Formats accepted as image bytes, told apart by their first bytes (never by Content-Type).
_MAGIC: tuple[tuple[bytes, int], ...] = (
    (b"\xff\xd8\xff", 0),  # JPEG
    (b"\x89PNG\r\n\x1a\n", 0),  # PNG
    (b"GIF87a", 0),
    (b"GIF89a", 0),
    (b"BM", 0),  # BMP
    (b"WEBP", 8),  # RIFF....WEBP
)
_IMAGE_FORMATS = "JPEG, PNG, GIF, BMP or WebP"
_NPY_CHANNELS = (1, 3)
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
_JSON_SHAPES = (
    'a base64 string, a list of them, {"b64": "..."} or {"instances": [{"b64": "..."}, ...]}'
)


@dataclass(frozen=True)
class Decoded:
    images: list[ImageInput]
    batch: bool  # a batch answers with a list per image, even for one image


def _image_bytes(data: bytes, where: str = "body") -> bytes:
    if not data:
        raise BadInput(f"{where} is empty; send one {_IMAGE_FORMATS} image")
    if not any(data[offset : offset + len(magic)] == magic for magic, offset in _MAGIC):
        raise BadInput(f"{where} is not a {_IMAGE_FORMATS} image (unrecognized first bytes)")
    return data


def _b64_image(value: Any, where: str) -> bytes:
    if isinstance(value, dict) and set(value) == {"b64"}:
        value = value["b64"]
    if not isinstance(value, str):
        raise BadInput(f'{where} must be a base64 string or {{"b64": "..."}}')
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"{where} is not valid base64 ({exc}); encode the image bytes") from exc
    return _image_bytes(data, where)


def decode_image(body: bytes) -> Decoded:
    return Decoded([_image_bytes(body)], batch=False)


def decode_npy(body: bytes) -> Decoded:
    """One HWC uint8 image or an NHWC uint8 batch; C is 1 or 3. Never unpickles."""
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = _NPY_HEADER_READERS.get(version)
        if read_header is None:
            raise ValueError(f"npy format version {version} is not supported")
        shape, _, dtype = read_header(stream)
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        raise BadInput(f"body is not a .npy file ({exc}); write it with numpy.save") from exc
    # Check the header before loading so a lying header cannot allocate a huge array.
    if dtype != np.uint8:
        raise BadInput(f"npy dtype is {dtype}; send uint8 pixels (0-255)")
    if len(shape) not in (3, 4) or shape[-1] not in _NPY_CHANNELS or 0 in shape:
        raise BadInput(
            f"npy shape is {shape}; send (height, width, channels) or "
            f"(n, height, width, channels) with channels 1 or 3"
        )
    if shape[-3] * shape[-2] > MAX_IMAGE_PIXELS:
        raise BadInput(f"npy images are {shape[-2]}x{shape[-3]}, above {MAX_IMAGE_PIXELS} pixels")
    if len(body) - stream.tell() != math.prod(shape):
        raise BadInput(f"npy data does not match its header shape {shape}; the file is truncated")
    stream.seek(0)
    try:
        array = np.load(stream, allow_pickle=False)
    except ValueError as exc:
        raise BadInput(f"cannot read npy body: {exc}") from exc
    if array.ndim == 3:
        return Decoded([array], batch=False)
    return Decoded(list(array), batch=True)


def decode_json(body: bytes) -> Decoded:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadInput(f"body is not valid JSON ({exc}); send {_JSON_SHAPES}") from exc
    if isinstance(doc, str) or (isinstance(doc, dict) and "instances" not in doc):
        return Decoded([_b64_image(doc, "body")], batch=False)
    items = doc["instances"] if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not items:
        raise BadInput(f"JSON body holds no images; send {_JSON_SHAPES}")
    return Decoded([_b64_image(item, f"instance {i}") for i, item in enumerate(items)], batch=True)


def decode_jsonlines(body: bytes) -> Decoded:
    """One image per line: raw base64, a JSON string, or {"b64": "..."}. Blank lines skipped."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"body is not UTF-8 text ({exc}); send one base64 image per line") from exc
    images = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        value: Any = line
        if line[0] in '"{':
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise BadInput(f"line {number} is not valid JSON ({exc})") from exc
        images.append(_b64_image(value, f"line {number}"))
    if not images:
        raise BadInput("body holds no lines; send one base64 image per line")
    return Decoded(images, batch=True)


DECODERS: dict[str, Callable[[bytes], Decoded]] = {
    contract.CT_JPEG: decode_image,
    contract.CT_PNG: decode_image,
    contract.CT_X_IMAGE: decode_image,
    contract.CT_NPY: decode_npy,
    contract.CT_JSON: decode_json,
    contract.CT_JSONLINES: decode_jsonlines,
}
