"""Every error status, as JSON that names the problem and the fix."""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging

import numpy as np
import pytest

from tests.serve.serving_helpers import image_bytes, npy_bytes

PNG = image_bytes("PNG")
MB = 1024 * 1024


def error_of(reply, status: int) -> str:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["Content-Type"] == "application/json"
    doc = json.loads(reply.body)
    assert doc["status"] == status
    return doc["error"]


@pytest.mark.parametrize("content_type", [None, "text/csv", "application/octet-stream", "image/"])
def test_unsupported_content_type_is_415(server, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    message = error_of(server.request("POST", "/invocations", PNG, headers), 415)
    assert "application/x-npy" in message  # names what to send instead


@pytest.mark.parametrize("accept", ["text/csv", "application/x-npy", "image/*", "*/*;q=0"])
def test_unsupported_accept_is_406(server, accept):
    message = error_of(server.invoke(PNG, "image/png", accept), 406)
    assert "application/jsonlines" in message


@pytest.mark.parametrize(
    ("content_type", "body", "words"),
    [
        ("image/png", b"", "empty"),
        ("image/png", b"hello world", "JPEG, PNG"),
        ("image/png", PNG[: len(PNG) // 2], "image 0"),
        ("application/x-npy", npy_bytes(np.zeros((8, 8, 3), np.float32)), "uint8"),
        ("application/x-npy", npy_bytes(np.zeros((8, 8), np.uint8)), "shape"),
        ("application/x-npy", npy_bytes(np.zeros((8, 8, 4), np.uint8)), "channels"),
        ("application/x-npy", b"not npy", "numpy.save"),
        ("application/json", b"{not json", "not valid JSON"),
        ("application/json", b'"@@@"', "base64"),
        ("application/json", json.dumps({"instances": []}).encode(), "no images"),
        ("application/json", b"42", "base64 string"),
        ("application/jsonlines", b"%%%\n", "line 1"),
        ("application/jsonlines", b"\n\n", "no lines"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_input_is_400(server, content_type, body, words):
    assert words in error_of(server.invoke(body, content_type), 400)


def test_bad_top_k_is_400(server):
    assert "top_k" in error_of(server.invoke(PNG, "image/png", "application/json; top_k=x"), 400)


def test_huge_image_header_is_400(server):
    from common.preprocessing import MAX_IMAGE_PIXELS

    header = io.BytesIO()  # a header alone, claiming a huge image
    shape = (MAX_IMAGE_PIXELS // 1000 + 1, 1000, 3)
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    assert "pixels" in error_of(server.invoke(header.getvalue(), "application/x-npy"), 400)


def test_body_over_the_limit_is_413_by_content_length(server):
    body = b"\xff\xd8\xff" + bytes(6 * MB)
    message = error_of(server.invoke(body, "image/jpeg"), 413)
    assert "SAGEMAKER_MAX_PAYLOAD_IN_MB" in message


def test_body_over_the_limit_is_413_by_bytes_read(server):
    """Chunked upload: no Content-Length, so the bytes read are what count."""
    chunks = [b"\xff\xd8\xff"] + [bytes(MB)] * 7
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(
            "POST",
            "/invocations",
            body=iter(chunks),
            headers={"Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert resp.status == 413
        assert json.loads(resp.read())["status"] == 413
    finally:
        conn.close()


def test_lying_content_length_is_refused_before_reading(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("POST", "/invocations")
        conn.putheader("Content-Type", "image/png")
        conn.putheader("Content-Length", str(100 * MB))
        conn.endheaders(PNG)
        assert conn.getresponse().status == 413
    finally:
        conn.close()


def test_chunked_body_under_the_limit_works(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        half = len(PNG) // 2
        conn.request(
            "POST",
            "/invocations",
            body=iter([PNG[:half], PNG[half:]]),
            headers={"Content-Type": "image/png"},
            encode_chunked=True,
        )
        assert conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/", "/predict", "/invocations/x", "/pingx"])
def test_unknown_path_is_404(server, path):
    assert "/invocations" in error_of(server.request("GET", path), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/invocations", "POST"),
        ("PUT", "/invocations", "POST"),
        ("POST", "/ping", "GET"),
        ("DELETE", "/execution-parameters", "GET"),
    ],
)
def test_wrong_method_is_405(server, method, path, allowed):
    reply = server.request(method, path, b"" if method != "GET" else None)
    assert allowed in error_of(reply, 405)
    assert allowed in reply.headers["Allow"]


def test_a_bug_is_a_generic_500_with_the_traceback_in_the_log(caplog):
    """In process: a handler that blows up; nothing internal reaches the client."""
    from serve import app as app_module
    from serve.decoders import DECODERS
    from serve.encoders import ENCODERS
    from serve.environment import ServingEnv
    from serve.loader import ModelSlot

    class Broken:
        decoders, encoders, default_accept = DECODERS, ENCODERS, "application/json"

        def answer(self, *args, **kwargs):
            raise RuntimeError("secret internal detail")

    slot = ModelSlot()
    slot.load_in_background(Broken).join()  # type: ignore[arg-type]
    env = ServingEnv.from_env({}, gpus=0, cpus=2)
    client = app_module.create_app(env, slot).test_client()
    with caplog.at_level(logging.ERROR):
        reply = client.post("/invocations", data=PNG, content_type="image/png")
    assert reply.status_code == 500
    assert reply.json == {
        "status": 500,
        "error": "internal server error; the container log has the details",
    }
    assert "secret" not in reply.get_data(as_text=True)
    assert "secret internal detail" in caplog.text  # the traceback went to the log
    assert "Traceback" in caplog.text or caplog.records[-1].exc_info


def test_base64_of_a_non_image_is_400(server):
    body = json.dumps([base64.b64encode(b"plain text").decode()]).encode()
    assert "instance 0" in error_of(server.invoke(body, "application/json"), 400)
