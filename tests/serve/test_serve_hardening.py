"""Inputs that could hurt a worker get a 4xx with a JSON body naming the problem.

Over-limit images (pixels and aspect ratio, PNG and npy), malformed and truncated chunked
bodies, what gunicorn's own parser refuses (bad request lines, duplicate Content-Length,
oversized headers), bodies slower than the deadline, and deadlines inside long requests.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest

from serve.batcher import Batcher, Deadline
from serve.errors import Unavailable
from tests.serve.serving_helpers import image_bytes, npy_bytes


def thin_png(width: int, height: int) -> bytes:
    """A real, complete PNG of black pixels; tiny on the wire whatever its size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    rows = b"".join(b"\x00" + bytes(width) for _ in range(height))  # filter 0, grey 0
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def raw_exchange(port: int, data: bytes, close_write: bool = False,
                 timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; return the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {received!r}"
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split()[1]), headers, body


def json_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> str:
    assert status == expected, (status, body[:300])
    assert headers["content-type"] == "application/json", headers
    doc = json.loads(body)
    assert doc["status"] == expected
    return doc["error"]


@pytest.mark.parametrize("width", [1_000_000, 2_000_000])
def test_a_thin_png_is_refused_by_its_aspect_ratio(server, width):
    body = thin_png(width, 1)
    assert len(body) < 10_000
    message = json_error(*_invoke(server, body, "image/png"), 400)
    assert "aspect ratio" in message and f"{width}x1" in message


def test_a_thin_npy_image_is_refused_by_its_aspect_ratio(server):
    body = npy_bytes(np.zeros((1, 200_000, 3), np.uint8))
    message = json_error(*_invoke(server, body, "application/x-npy"), 400)
    assert "aspect ratio" in message


def test_the_pixel_limit_names_the_limit(server):
    message = json_error(*_invoke(server, thin_png(8193, 8193), "image/png"), 400)
    assert "8192x8192" in message


def _invoke(server, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    request = (f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return raw_exchange(server.port, request)


CHUNKED_HEAD = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


@pytest.mark.parametrize(
    ("body", "close_write"),
    [
        (b"zz\r\nabc\r\n0\r\n\r\n", False),  # chunk size is not hex
        (b"5\r\nabcdefgh\r\n0\r\n\r\n", False),  # chunk longer than its size
        (b"400\r\n" + image_bytes()[:100], True),  # cut off inside a chunk
        (b"10\r\n0123456789abcdef\r\n", True),  # no last chunk
    ],
    ids=["bad-size", "overlong-chunk", "cut-inside-chunk", "no-last-chunk"],
)
def test_malformed_or_truncated_chunked_bodies_are_400(server, body, close_write):
    status, headers, answer = raw_exchange(server.port, CHUNKED_HEAD + body, close_write)
    json_error(status, headers, answer, 400)
    assert server.request("GET", "/ping").status == 200


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2"
         b"\r\n\r\nab", 400),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /ping HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        (b"GET /ping HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        (b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET /ping HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120))
         + b"\r\n", 431),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n", 414),
    ],
    ids=["duplicate-content-length", "request-line", "http-version", "header-name",
         "transfer-coding", "header-too-large", "too-many-headers", "uri-too-long"],
)
def test_what_gunicorn_refuses_is_json_too(server, request_bytes, expected):
    status, headers, body = raw_exchange(server.port, request_bytes)
    assert "malformed HTTP request" in json_error(status, headers, body, expected)


@pytest.fixture(scope="module")
def impatient_server(model_base, tmp_path_factory):
    from tests.serve.serving_helpers import Server

    server = Server(model_base, tmp_path_factory.mktemp("impatient") / "server.log",
                    {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "2",
                     "SAGEMAKER_MAX_PAYLOAD_IN_MB": "64"})
    try:
        server.wait_until(ready=True)
        yield server
    finally:
        server.stop()


def test_a_body_slower_than_the_deadline_is_408(impatient_server):
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 1000\r\n\r\n")
    message = json_error(*raw_exchange(impatient_server.port, head + b"\x89PNG"), 408)
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT=2" in message


def test_a_request_longer_than_the_deadline_is_503_with_the_reason(impatient_server):
    # Seconds of work (15,000 images), far past the 2 s deadline.
    batch = np.random.default_rng(1).integers(0, 256, (15_000, 32, 32, 3), dtype=np.uint8)
    reply = impatient_server.invoke(npy_bytes(batch), "application/x-npy")
    assert reply.status == 503, reply.body[:200]
    assert "did not finish within SAGEMAKER_MODEL_SERVER_TIMEOUT=2s" in json.loads(reply.body)[
        "error"]
    assert impatient_server.request("GET", "/ping").status == 200


def test_the_deadline_holds_inside_one_forward_pass():
    """The answer comes at the deadline while the network is still running, not after it."""
    release = threading.Event()

    def slow_network(batch: np.ndarray) -> np.ndarray:
        release.wait(30)
        return np.zeros((len(batch), 2), np.float32)

    batcher = Batcher(slow_network, max_batch=8, max_wait_s=0)
    try:
        with pytest.raises(Unavailable, match="did not finish within"):
            batcher.infer(np.zeros((1, 3, 4, 4), np.float32), Deadline(0.2))
        assert not release.is_set()  # the forward pass was still running
    finally:
        release.set()
    # The worker goes on: the next request is answered.
    assert batcher.infer(np.zeros((2, 3, 4, 4), np.float32), Deadline(30)).shape == (2, 2)


def test_requests_are_batched_and_answered_in_order():
    seen: list[int] = []
    gate = threading.Event()

    def network(batch: np.ndarray) -> np.ndarray:
        gate.wait(30)
        seen.append(len(batch))
        return batch.reshape(len(batch), -1)[:, :1].copy()

    batcher = Batcher(network, max_batch=8, max_wait_s=0)
    results: dict[int, np.ndarray] = {}
    first = threading.Thread(target=lambda: results.setdefault(
        -1, batcher.infer(np.full((1, 1), -1, np.float32), Deadline(30))))
    first.start()
    time.sleep(0.1)  # the first request is in the network; the next ones queue behind it
    threads = [threading.Thread(target=lambda i=i: results.setdefault(
        i, batcher.infer(np.full((1, 1), i, np.float32), Deadline(30)))) for i in range(5)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in [first, *threads]:
        thread.join(30)
    assert seen[0] == 1 and sum(seen) == 6
    assert max(seen) > 1  # requests that waited together ran together
    assert all(results[i][0, 0] == i for i in range(-1, 5))


def test_an_image_that_would_allocate_gigabytes_costs_no_memory(server):
    """The 2,000,000 x 1 PNG that made a worker try to allocate up to 206 GB."""
    rss_before = _worker_rss(server)
    for _ in range(5):
        json_error(*_invoke(server, thin_png(2_000_000, 1), "image/png"), 400)
    assert _worker_rss(server) < rss_before + 200 * 2**20


def _worker_rss(server) -> int:
    from pathlib import Path

    total = 0
    for child in Path(f"/proc/{server.process.pid}/task").iterdir():
        for pid in (Path(f"/proc/{server.process.pid}/task/{child.name}/children")
                    .read_text().split()):
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines()
                              if line.startswith("VmRSS"))) * 1024
    return total


def test_segmentation_bounds_come_from_the_same_checks():
    from serve import segmentation
    from serve.errors import BadInput

    with pytest.raises(BadInput, match="8192"):
        segmentation.to_image(thin_png(8193, 8193))
    assert segmentation.to_image(np.zeros((4, 4, 3), np.uint8)).size == (4, 4)


def test_the_servers_pixel_limit_is_trainings():
    """serve/images.py repeats the limit so the CPU image need not import torch."""
    from common.preprocessing import MAX_IMAGE_PIXELS
    from serve.images import MAX_IMAGE_PIXELS as SERVED

    assert SERVED == MAX_IMAGE_PIXELS
