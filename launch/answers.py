"""Reading an endpoint's answers for a person: ranked probabilities, summaries of binary ones.

Binary answers are the serving image's segmentation formats (README "Semantic segmentation"):
``image/png`` (one class index per pixel), ``application/x-protobuf`` /
``application/x-recordio-protobuf`` (a RecordIO-framed ``Record`` with ``shape`` and ``target``
probabilities, read with the SDK's own ``read_recordio`` and ``record_pb2`` as the seed lab
does) and ``application/x-npy`` (probabilities ``[1, C, H, W]``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

BINARY_SUFFIXES = {
    "image/png": ".png",
    "application/x-protobuf": ".pb",
    "application/x-recordio-protobuf": ".pb",
    "application/x-npy": ".npy",
}


def media_type(header: str) -> str:
    """``application/json; verbose=true`` -> ``application/json``."""
    return header.split(";")[0].strip().lower()


def top_k_line(probabilities: Sequence[float], k: int) -> str:
    """The k most probable class indices, ties in class order (as the server ranks them)."""
    ranked = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])[:k]
    return "  ".join(f"{i} ({probabilities[i]:.3f})" for i in ranked)


def summarise_binary(content_type: str, body: bytes) -> str:
    try:
        if content_type == "image/png":
            return _summarise_png(body)
        if content_type == "application/x-npy":
            return _summarise_probabilities(_npy(body))
        return _summarise_probabilities(_protobuf(body))
    except Exception as exc:  # a summary must never lose the saved answer
        return f"not readable as {content_type} ({exc})"


def _summarise_png(body: bytes) -> str:
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(body)) as image:
        if image.mode not in ("P", "L"):  # not a class-index mask
            return f"{image.width}x{image.height} {image.mode} image"
        mask = np.asarray(image)
    return f"mask {mask.shape[0]}x{mask.shape[1]}: {_shares(mask)}"


def _npy(body: bytes):
    import numpy as np

    return np.load(io.BytesIO(body), allow_pickle=False)


def _protobuf(body: bytes):
    import numpy as np
    from sagemaker.amazon.common import read_recordio
    from sagemaker.amazon.record_pb2 import Record

    records = list(read_recordio(io.BytesIO(body)))
    if len(records) != 1:
        raise ValueError(f"{len(records)} records, expected 1")
    record = Record()
    record.ParseFromString(records[0])
    shape = list(record.features["shape"].int32_tensor.values)
    target = np.array(record.features["target"].float32_tensor.values, dtype=np.float32)
    return target.reshape(shape)


def _summarise_probabilities(probabilities) -> str:
    """``3 classes at 2x4: class 0 75.0%, class 2 25.0%`` for probabilities [1, C, H, W]."""
    if probabilities.ndim != 4 or probabilities.shape[0] != 1:
        return f"array of shape {list(probabilities.shape)}"
    classes, height, width = probabilities.shape[1:]
    return f"{classes} classes at {height}x{width}: {_shares(probabilities[0].argmax(axis=0))}"


def _shares(mask) -> str:
    import numpy as np

    values, counts = np.unique(mask, return_counts=True)
    return ", ".join(f"class {int(v)} {100 * c / mask.size:.1f}%"
                     for v, c in zip(values, counts, strict=True))
