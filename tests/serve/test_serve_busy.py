"""/ping stays fast while the only worker is busy, and overload is refused, not queued forever."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from serve.environment import THREADS_PER_WORKER
from tests.serve.serving_helpers import Server, npy_bytes

PING_BUDGET_S = 2.0  # SageMaker's /ping timeout


def batch_body(images: int) -> bytes:
    pixels = np.random.default_rng(7).integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    return npy_bytes(pixels)


@pytest.fixture(scope="module")
def one_worker(model_base, tmp_path_factory):
    server = Server(model_base, tmp_path_factory.mktemp("busy") / "server.log")
    try:
        server.wait_until(ready=True)
        yield server
    finally:
        server.stop()


def timed_ping(server) -> float:
    started = time.monotonic()
    reply = server.request("GET", "/ping", timeout=10)
    assert reply.status == 200
    return time.monotonic() - started


def test_ping_answers_fast_while_the_worker_runs_long_inferences(one_worker):
    body = batch_body(800)  # seconds of CPU inference each on a small machine
    with ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(one_worker.invoke, body, "application/x-npy") for _ in range(4)]
        time.sleep(0.5)  # let the requests reach the worker
        latencies = []
        for _ in range(5):
            latencies.append(timed_ping(one_worker))
            time.sleep(0.1)
        in_flight = sum(not future.done() for future in slow)
        replies = [future.result() for future in slow]
    assert in_flight >= 1, "the pings did not overlap inference; make the batch bigger"
    assert max(latencies) < PING_BUDGET_S, latencies
    assert all(reply.status == 200 for reply in replies)
    assert np.asarray(json.loads(replies[0].body)).shape == (800, 10)


def test_more_requests_than_threads_get_503_and_ping_still_answers(one_worker):
    body = batch_body(100)
    requests = THREADS_PER_WORKER + 8
    with ThreadPoolExecutor(requests) as pool:
        futures = [
            pool.submit(one_worker.invoke, body, "application/x-npy") for _ in range(requests)
        ]
        time.sleep(0.3)
        latency = timed_ping(one_worker)
        replies = [future.result() for future in futures]
    statuses = sorted(reply.status for reply in replies)
    assert set(statuses) == {200, 503}, statuses
    refused = next(reply for reply in replies if reply.status == 503)
    assert "retry" in json.loads(refused.body)["error"]
    assert latency < PING_BUDGET_S
