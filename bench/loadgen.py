"""The closed-loop load client every serving bench shares: C keep-alive connections, each
sending its next request as soon as the previous answer arrives, for a fixed time.

One client for every server, so no server is measured with a kinder client. Latency is from
the first byte sent to the last byte of the answer read; requests/s counts answers received in
the window. Connections are opened (and a first request sent on each) before the clock starts.

    from bench.loadgen import Target, closed_loop
    closed_loop(Target("127.0.0.1", 8080, "/invocations", body, {"Content-Type": "image/jpeg"}),
                concurrency=8, seconds=20)
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    ok_status: int = 200


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def closed_loop(target: Target, concurrency: int, seconds: float, warmup: int = 1) -> dict:
    """Requests/s, p50/p90/p99 ms and errors for ``concurrency`` connections over ``seconds``."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    ready = threading.Barrier(concurrency + 1)
    window: dict[str, float] = {}

    def send(conn: http.client.HTTPConnection) -> tuple[int, float]:
        started = time.perf_counter()
        conn.request("POST", target.path, target.body, target.headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started

    def client() -> None:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=120)
        try:
            for _ in range(warmup):
                send(conn)
        except (OSError, http.client.HTTPException) as exc:
            key = f"warm-up {type(exc).__name__}"
            with lock:
                errors[key] = errors.get(key, 0) + 1
        ready.wait()
        mine: list[float] = []
        while time.perf_counter() < window["end"]:
            try:
                status, elapsed = send(conn)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                conn.close()
                conn = http.client.HTTPConnection(target.host, target.port, timeout=120)
                continue
            if time.perf_counter() > window["end"]:
                break  # finished after the window: not counted
            if status != target.ok_status:
                with lock:
                    errors[str(status)] = errors.get(str(status), 0) + 1
            mine.append(elapsed)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    window["start"] = time.perf_counter()
    window["end"] = window["start"] + seconds + 3600  # until every client is warm
    ready.wait()
    window["start"] = time.perf_counter()
    window["end"] = window["start"] + seconds
    for thread in threads:
        thread.join()
    ms = sorted(1000 * t for t in latencies)
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "requests": len(ms),
        "errors": errors,
        "requests_per_second": round(len(ms) / seconds, 1),
        "p50_ms": round(percentile(ms, 0.50), 1),
        "p90_ms": round(percentile(ms, 0.90), 1),
        "p99_ms": round(percentile(ms, 0.99), 1),
    }
