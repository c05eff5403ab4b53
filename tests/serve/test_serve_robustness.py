"""A few hundred malformed bodies get 4xx answers, and the server keeps working afterwards."""

from __future__ import annotations

import base64
import http.client
import io
import json
import struct
import zlib

import numpy as np

from tests.serve.serving_helpers import image_bytes, npy_bytes

PNG = image_bytes("PNG", (64, 48), seed=5)
JPEG = image_bytes("JPEG", (64, 48), seed=6)
IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG signature and a valid IHDR for a huge image, with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return out.getvalue()


def malformed_bodies() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    b64 = base64.b64encode
    cases: list[tuple[str, bytes]] = []
    for content_type in IMAGE_TYPES:
        cases.append((content_type, b""))
        cases.append((content_type, png_claiming(100_000, 100_000)))
        cases.append((content_type, png_claiming(0, 0)))
        for source in (PNG, JPEG):
            for cut in rng.integers(1, len(source) - 1, 25):
                cases.append((content_type, source[:cut]))
        for size in (1, 7, 100, 5000):
            cases.append((content_type, rng.bytes(int(size))))
    npy = "application/x-npy"
    cases += [
        (npy, b""),
        (npy, rng.bytes(64)),
        (npy, npy_bytes(np.zeros((8, 8, 3), np.float32))),
        (npy, npy_bytes(np.zeros((8, 8, 3), np.int16))),
        (npy, npy_bytes(np.zeros((8, 8, 3), bool))),
        (npy, npy_bytes(np.array([{"a": 1}, None], dtype=object))),  # pickled objects
        (npy, npy_bytes(np.zeros((8, 8), np.uint8))),
        (npy, npy_bytes(np.zeros((8,), np.uint8))),
        (npy, npy_bytes(np.zeros((1, 1, 8, 8, 3), np.uint8))),
        (npy, npy_bytes(np.zeros((8, 8, 2), np.uint8))),
        (npy, npy_bytes(np.zeros((0, 8, 8, 3), np.uint8))),
        (npy, npy_bytes(np.zeros((8, 8, 3), np.uint8))[:-10]),  # truncated data
        (npy, npy_header("|u1", (100_000, 100_000, 3))),  # huge claim, no data
        (npy, npy_header("|u1", (2**40, 2**40, 2**40, 3))),
        (npy, npy_header("|O", (4, 4, 3))),
        (npy, b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x'}   \n"),
        (npy, b"PK\x03\x04" + rng.bytes(100)),  # an .npz
    ]
    truncated = base64.b64encode(PNG[:100]).decode()
    cases += [
        ("application/json", body)
        for body in (
            b"",
            b"{",
            b"[",
            b"null",
            b"1e999",
            b"\xff\xfe\x00",
            b'"not base64!"',
            b'"' + b64(b"plain text") + b'"',
            json.dumps(truncated).encode(),
            json.dumps([truncated, "x"]).encode(),
            json.dumps({"instances": "abc"}).encode(),
            json.dumps({"instances": [1, 2]}).encode(),
            json.dumps({"instances": [{"b64": 5}]}).encode(),
            json.dumps({"instances": [{"image": "abc"}]}).encode(),
            json.dumps({"b64": None}).encode(),
            json.dumps({"other": "x"}).encode(),
            json.dumps([[1, 2, 3]]).encode(),
            json.dumps([]).encode(),
            b"[" * 10_000 + b"]" * 10_000,  # deep nesting
        )
    ]
    cases += [
        ("application/jsonlines", body)
        for body in (
            b"",
            b"\xff\xfe",
            b"!!!\n",
            b'{"b64": \n',
            b64(PNG) + b"\n" + b"%%%",
            b64(b"not an image"),
            json.dumps({"b64": truncated}).encode(),
            b'"unterminated\n',
            b"[1, 2]",
        )
    ]
    return cases


def test_malformed_bodies_get_4xx_and_the_server_survives(server):
    cases = malformed_bodies()
    assert len(cases) >= 200
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    failures = []
    try:
        for content_type, body in cases:
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": content_type})
                resp = conn.getresponse()
                answer = resp.read()
            except (ConnectionError, http.client.HTTPException) as exc:
                failures.append((content_type, body[:40], repr(exc)))
                conn.close()
                continue
            if not 400 <= resp.status < 500 or "error" not in json.loads(answer):
                failures.append((content_type, body[:40], resp.status, answer[:200]))
    finally:
        conn.close()
    assert not failures, failures[:10]

    assert server.invoke(PNG, "image/png").status == 200
    assert server.request("GET", "/ping").status == 200
    log = server.log()
    assert "unhandled error" not in log and "Traceback" not in log
