"""POST /invocations: every request Content-Type and every response Accept, on the wire."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from serve.batcher import Deadline
from tests.serve.serving_helpers import CLASS_NAMES, NUM_CLASSES, image_bytes, npy_bytes

PNG = image_bytes("PNG", seed=1)
JPEG = image_bytes("JPEG", seed=2)
B64 = base64.b64encode(PNG).decode()


def expected(reference_model, images) -> np.ndarray:
    return reference_model.predict(images, Deadline(None))


def assert_builtin_list(body: bytes, want: np.ndarray) -> None:
    """The built-in algorithm's answer: a bare JSON list of floats, nothing around it."""
    doc = json.loads(body)
    assert isinstance(doc, list) and len(doc) == NUM_CLASSES
    assert all(isinstance(p, float) for p in doc)
    assert body == json.dumps(doc).encode()  # no envelope, no extra whitespace
    assert sum(doc) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(doc, want, atol=1e-5)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("image/png", PNG),
        ("image/jpeg", JPEG),
        ("application/x-image", PNG),
        ("application/x-image", JPEG),
        ("image/jpeg", PNG),  # the format comes from the bytes, not the header
        ("image/png; charset=utf-8", PNG),  # Content-Type parameters are ignored
        ("IMAGE/PNG", PNG),
    ],
    ids=["png", "jpeg", "x-image-png", "x-image-jpeg", "png-as-jpeg", "charset", "upper-case"],
)
def test_single_image_answers_one_probability_per_class(
    server, reference_model, content_type, body
):
    reply = server.invoke(body, content_type)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    assert_builtin_list(reply.body, expected(reference_model, [body])[0])


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/json", "application/*"])
def test_json_is_the_default_answer(server, accept):
    reply = server.invoke(PNG, "image/png", accept)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert len(json.loads(reply.body)) == NUM_CLASSES


def test_accept_list_picks_the_first_supported_type(server):
    reply = server.invoke(PNG, "image/png", "text/csv, application/jsonlines;q=0.5, */*;q=0.1")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/jsonlines"


def test_npy_hwc_is_one_image(server, reference_model):
    pixels = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    reply = server.invoke(npy_bytes(pixels), "application/x-npy")
    assert reply.status == 200, reply.body
    assert_builtin_list(reply.body, expected(reference_model, [pixels])[0])


def test_npy_grayscale_channel_is_accepted(server):
    pixels = np.zeros((20, 24, 1), dtype=np.uint8)
    reply = server.invoke(npy_bytes(pixels), "application/x-npy")
    assert reply.status == 200, reply.body


def test_npy_nhwc_is_a_batch(server, reference_model):
    batch = np.random.default_rng(4).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    reply = server.invoke(npy_bytes(batch), "application/x-npy")
    assert reply.status == 200, reply.body
    doc = json.loads(reply.body)
    assert len(doc) == 3 and all(len(row) == NUM_CLASSES for row in doc)
    np.testing.assert_allclose(doc, expected(reference_model, list(batch)), atol=1e-5)


def test_batch_of_one_is_still_a_list_of_lists(server):
    batch = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    doc = json.loads(server.invoke(npy_bytes(batch), "application/x-npy").body)
    assert len(doc) == 1 and len(doc[0]) == NUM_CLASSES


@pytest.mark.parametrize(
    ("doc", "batch"),
    [
        (B64, False),
        ({"b64": B64}, False),
        ([B64, B64], True),
        ({"instances": [{"b64": B64}, {"b64": B64}]}, True),
        ({"instances": [B64]}, True),
    ],
)
def test_json_base64_shapes(server, reference_model, doc, batch):
    reply = server.invoke(json.dumps(doc).encode(), "application/json; charset=utf-8")
    assert reply.status == 200, reply.body
    want = expected(reference_model, [PNG])[0]
    answer = json.loads(reply.body)
    if batch:
        assert all(len(row) == NUM_CLASSES for row in answer)
        np.testing.assert_allclose(answer[0], want, atol=1e-5)
    else:
        assert_builtin_list(reply.body, want)


def test_jsonlines_request_answers_one_line_per_image(server, reference_model):
    lines = [B64, json.dumps(B64), json.dumps({"b64": base64.b64encode(JPEG).decode()}), ""]
    reply = server.invoke(
        "\n".join(lines).encode(), "application/jsonlines", "application/jsonlines"
    )
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/jsonlines"
    out = reply.body.decode().split("\n")
    assert len(out) == 3
    want = expected(reference_model, [PNG, PNG, JPEG])
    for line, row in zip(out, want, strict=True):
        doc = json.loads(line)
        assert list(doc) == ["prediction"]
        np.testing.assert_allclose(doc["prediction"], row, atol=1e-5)


def test_jsonlines_request_with_json_accept_is_a_list_of_lists(server):
    reply = server.invoke(f"{B64}\n{B64}\n".encode(), "application/jsonlines")
    assert reply.status == 200
    assert np.asarray(json.loads(reply.body)).shape == (2, NUM_CLASSES)


def test_single_image_jsonlines_answer(server):
    reply = server.invoke(PNG, "image/png", "application/jsonlines")
    assert reply.status == 200
    doc = json.loads(reply.body)
    assert list(doc) == ["prediction"] and len(doc["prediction"]) == NUM_CLASSES


def check_verbose(doc: dict, top_k: int) -> None:
    assert set(doc) == {"prediction", "labels", "predicted_label", "top_k"}
    assert doc["labels"] == CLASS_NAMES
    probs = doc["prediction"]
    assert doc["predicted_label"] == CLASS_NAMES[int(np.argmax(probs))]
    assert len(doc["top_k"]) == top_k
    ranked = sorted(range(NUM_CLASSES), key=lambda i: -probs[i])[:top_k]
    assert [e["label"] for e in doc["top_k"]] == [CLASS_NAMES[i] for i in ranked]
    assert [e["probability"] for e in doc["top_k"]] == [probs[i] for i in ranked]


@pytest.mark.parametrize(
    ("accept", "attributes", "top_k"),
    [
        ("application/json; verbose=true", None, 5),
        ("application/json;verbose=True;top_k=3", None, 3),
        ("application/json", "verbose=true", 5),
        (None, "top_k=2", 2),
        ("application/json; top_k=4", "top_k=9", 4),  # Accept wins
    ],
)
def test_verbose_json(server, accept, attributes, top_k):
    headers = {"X-Amzn-SageMaker-Custom-Attributes": attributes} if attributes else {}
    reply = server.invoke(PNG, "image/png", accept, headers=headers)
    assert reply.status == 200, reply.body
    check_verbose(json.loads(reply.body), top_k)


def test_verbose_jsonlines_batch(server):
    body = f"{B64}\n{B64}".encode()
    reply = server.invoke(body, "application/jsonlines", "application/jsonlines; verbose=true")
    assert reply.status == 200
    for line in reply.body.decode().split("\n"):
        check_verbose(json.loads(line), 5)


def test_top_k_above_class_count_ranks_every_class(server):
    reply = server.invoke(PNG, "image/png", "application/json; top_k=50")
    assert len(json.loads(reply.body)["top_k"]) == NUM_CLASSES


def test_unknown_headers_are_ignored(server):
    headers = {"X-Something-Else": "1", "X-Amzn-SageMaker-Custom-Attributes": "trace=abc"}
    reply = server.invoke(PNG, "image/png", headers=headers)
    assert reply.status == 200
    assert len(json.loads(reply.body)) == NUM_CLASSES


def test_execution_parameters(server):
    reply = server.request("GET", "/execution-parameters")
    assert reply.status == 200
    assert json.loads(reply.body) == {
        "MaxConcurrentTransforms": 3,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }
