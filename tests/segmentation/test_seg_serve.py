"""Serving a segmentation artifact: PNG masks, the built-in's RecordIO-protobuf answer, npy."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serve.protobuf_record import record, recordio_frame
from tests.serve.serving_helpers import Server, image_bytes

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")


def _parse_like_seed_lab(body: bytes) -> np.ndarray:
    """What the seed notebook does with application/x-protobuf (RecordIO, Record, reshape)."""
    from sagemaker.amazon.common import read_recordio
    from sagemaker.amazon.record_pb2 import Record

    records = list(read_recordio(io.BytesIO(body)))
    assert len(records) == 1
    rec = Record()
    rec.ParseFromString(records[0])
    values = list(rec.features["target"].float32_tensor.values)
    shape = np.squeeze(list(rec.features["shape"].int32_tensor.values))
    mask = np.reshape(np.array(values), shape)
    return np.squeeze(mask, axis=0)


@pytest.fixture(scope="module")
def seg_server(trained_fcn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = trained_fcn[0]
    srv = Server(env.base_dir, tmp_path_factory.mktemp("seg_server") / "server.log")
    try:
        srv.wait_until(ready=True, timeout=120)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def validation_pair(seg_data: Path) -> tuple[bytes, np.ndarray]:
    image = (seg_data / "validation" / "validation_0000.jpg").read_bytes()
    stored = np.array(Image.open(seg_data / "validation_annotation" / "validation_0000.png"))
    labels = np.select([stored == 100, stored == 200, stored == 255], [1, 2, 255], 0)
    return image, labels


def test_png_mask_is_indexed_input_sized_and_right(seg_server, validation_pair) -> None:
    image, labels = validation_pair
    reply = seg_server.invoke(image, "image/jpeg", "image/png")
    assert reply.status == 200 and reply.headers["Content-Type"] == "image/png"
    mask = Image.open(io.BytesIO(reply.body))
    assert mask.mode == "P" and mask.size == (64, 64)
    predicted = np.array(mask)
    valid = labels != 255
    assert (predicted[valid] == labels[valid]).mean() > 0.9


def test_png_is_the_default_answer(seg_server, validation_pair) -> None:
    reply = seg_server.invoke(validation_pair[0], "image/jpeg")
    assert reply.status == 200 and reply.body.startswith(b"\x89PNG")


@pytest.mark.parametrize("accept", ["application/x-protobuf", "application/x-recordio-protobuf"])
def test_protobuf_parses_like_the_seed_lab_and_argmax_equals_png(seg_server,
                                                                 accept: str) -> None:
    image = image_bytes("JPEG", size=(90, 50), seed=3)  # not square: the answer keeps the size
    probs = _parse_like_seed_lab(seg_server.invoke(image, "image/jpeg", accept).body)
    assert probs.shape == (3, 50, 90)
    assert np.allclose(probs.sum(axis=0), 1.0, atol=1e-4)
    png = np.array(Image.open(io.BytesIO(seg_server.invoke(image, "image/jpeg",
                                                           "image/png").body)))
    assert np.array_equal(probs.argmax(axis=0), png)


def test_npy_answer_is_the_probability_array(seg_server) -> None:
    image = image_bytes("PNG", size=(40, 30), seed=1)
    reply = seg_server.invoke(image, "image/png", "application/x-npy")
    probs = np.load(io.BytesIO(reply.body), allow_pickle=False)
    assert probs.shape == (1, 3, 30, 40) and probs.dtype == np.float32
    via_proto = _parse_like_seed_lab(seg_server.invoke(image, "image/png",
                                                       "application/x-protobuf").body)
    assert np.allclose(probs[0], via_proto, atol=1e-6)


def test_refusals_carry_their_status(seg_server) -> None:
    assert seg_server.invoke(b"x,y", "text/csv").status == 415
    assert seg_server.invoke(image_bytes(), "image/png", "application/json").status == 406
    huge = io.BytesIO()
    Image.new("RGB", (2100, 2100)).save(huge, "PNG")
    reply = seg_server.invoke(huge.getvalue(), "image/png")
    assert reply.status == 400 and b"at most" in reply.body


def test_a_batch_answers_one_record_per_image_in_order(seg_server) -> None:
    images = np.stack([np.array(Image.open(io.BytesIO(image_bytes("PNG", size=(40, 30),
                                                                  seed=seed))))
                       for seed in (1, 2)])
    body = io.BytesIO()
    np.save(body, images, allow_pickle=False)
    batch = seg_server.invoke(body.getvalue(), "application/x-npy",
                              "application/x-recordio-protobuf")
    assert batch.status == 200, batch.body[:300]
    from sagemaker.amazon.common import read_recordio

    assert len(list(read_recordio(io.BytesIO(batch.body)))) == 2
    as_npy = np.load(io.BytesIO(seg_server.invoke(body.getvalue(), "application/x-npy",
                                                  "application/x-npy").body))
    assert as_npy.shape == (2, 3, 30, 40)
    one = np.load(io.BytesIO(seg_server.invoke(image_bytes("PNG", size=(40, 30), seed=2),
                                               "image/png", "application/x-npy").body))
    assert np.allclose(as_npy[1], one[0], atol=1e-5)
    refused = seg_server.invoke(body.getvalue(), "application/x-npy", "image/png")
    assert refused.status == 400 and b"batch" in refused.body


def test_hand_written_record_matches_record_pb2() -> None:
    from sagemaker.amazon.record_pb2 import Record

    from serve.protobuf_record import float32_tensor, int32_tensor

    values = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3) / 7
    framed = recordio_frame(record({"shape": int32_tensor([1, 1, 2, 3]),
                                    "target": float32_tensor(values)}))
    assert len(framed) % 4 == 0
    rec = Record()
    rec.ParseFromString(framed[8:8 + int.from_bytes(framed[4:8], "little")])
    assert list(rec.features["shape"].int32_tensor.values) == [1, 1, 2, 3]
    assert list(rec.features["target"].float32_tensor.shape) == [1, 1, 2, 3]
    assert np.allclose(rec.features["target"].float32_tensor.values, values.ravel())
