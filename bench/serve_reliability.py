#!/usr/bin/env python3
"""No request can hurt a worker: malformed traffic, a long valid run, and /ping throughout.

One `serve` (defaults, ResNet-18 at 224x224, random weights) on this machine:

1. ``--malformed`` (>= 2,000) malformed requests, cycling through the test suite's cases:
   truncated and random image bytes, huge and thin image headers, bad npy/JSON/JSON Lines
   bodies, malformed and truncated chunked bodies, and HTTP that gunicorn itself refuses
   (bad request lines, duplicate Content-Length, oversized headers). Counted: answers by
   status class, 5xx, connections closed without an answer, and worker deaths (workers booted
   after start-up, from the server log and the master's children).
2. ``--valid`` (20,000) valid requests (the 500x375 photo) at concurrency 16. Counted: errors,
   and each worker's RSS after a warm-up of 2,000 requests and at the end.
3. Throughout both: /ping every 250 ms with a 2 s timeout; the slowest answer and any miss.

Writes bench/results/serve_reliability.{json,md}. Run it alone on the machine (flock -x).

    .venv/bin/python bench/serve_reliability.py [--malformed 2400] [--valid 20000]
"""

from __future__ import annotations

import http.client
import itertools
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report, servers
from tests.serve.test_serve_hardening import CHUNKED_HEAD, thin_png
from tests.serve.test_serve_robustness import malformed_bodies

RAW_REQUESTS = [
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GARBAGE\r\n\r\n",
    b"GET /ping HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /ping HTTP/1.1\r\nBad Header: x\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n",
    CHUNKED_HEAD + b"zz\r\nabc\r\n0\r\n\r\n",
    CHUNKED_HEAD + b"5\r\nabcdefgh\r\n0\r\n\r\n",
]
TRUNCATED = [CHUNKED_HEAD + b"400\r\n" + b"\x89PNG\r\n\x1a\n" + bytes(100),
             CHUNKED_HEAD + b"10\r\n0123456789abcdef\r\n"]


class PingWatch(threading.Thread):
    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stop_event = port, threading.Event()
        self.latencies: list[float] = []
        self.misses: list[str] = []

    def run(self) -> None:
        while not self.stop_event.wait(0.25):
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ping")
                status = conn.getresponse().status
                conn.close()
                if status != 200:
                    self.misses.append(str(status))
            except OSError as exc:
                self.misses.append(type(exc).__name__)
            self.latencies.append(time.perf_counter() - started)


def raw(port: int, data: bytes, close_write: bool) -> int | None:
    """The status of the answer, or None when the connection closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            head += chunk
    return int(head.split()[1])


def malformed_phase(port: int, count: int) -> dict:
    cases: list[tuple[bytes, bool]] = []
    for content_type, body in malformed_bodies():
        cases.append(((f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}"
                       f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body, False))
    for width in (1_000_000, 2_000_000):
        body = thin_png(width, 1)
        cases.append((("POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body, False))
    cases += [(request, False) for request in RAW_REQUESTS]
    cases += [(request, True) for request in TRUNCATED]
    statuses: dict[str, int] = {}
    for data, close_write in itertools.islice(itertools.cycle(cases), count):
        status = raw(port, data, close_write)
        key = "no answer" if status is None else f"{status // 100}xx"
        statuses[key] = statuses.get(key, 0) + 1
    return {"requests": count, "distinct_cases": len(cases), "answers": statuses}


def rss_by_worker(master_pid: int) -> dict[int, int]:
    out = {}
    for task in Path(f"/proc/{master_pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            status = Path(f"/proc/{pid}/status").read_text()
            out[int(pid)] = int(next(line.split()[1] for line in status.splitlines()
                                     if line.startswith("VmRSS"))) * 1024
    return out


def valid_phase(port: int, body: bytes, count: int, concurrency: int, master: int) -> dict:
    counter = itertools.count()
    lock = threading.Lock()
    errors: dict[str, int] = {}
    warm = {"at": min(2000, count // 10)}
    snapshots: dict[str, dict[int, int]] = {}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while (n := next(counter)) < count:
            if n == warm["at"]:
                snapshots["after_warmup"] = rss_by_worker(master)
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "image/jpeg"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    with lock:
                        errors[str(response.status)] = errors.get(str(response.status), 0) + 1
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    snapshots["end"] = rss_by_worker(master)
    growth = {pid: round(100 * (snapshots["end"][pid] - rss) / rss, 2)
              for pid, rss in snapshots["after_warmup"].items() if pid in snapshots["end"]}
    return {"requests": count, "concurrency": concurrency, "seconds": round(seconds, 1),
            "requests_per_second": round(count / seconds, 1), "errors": errors,
            "warmup_requests": warm["at"],
            "rss_mib_after_warmup": {p: round(v / 2**20, 1)
                                     for p, v in snapshots["after_warmup"].items()},
            "rss_mib_end": {p: round(v / 2**20, 1) for p, v in snapshots["end"].items()},
            "rss_growth_percent": growth}


def markdown(result: dict) -> str:
    m, bad, good, ping = result["machine"], result["malformed"], result["valid"], result["ping"]
    five = sum(v for k, v in bad["answers"].items() if k == "5xx")
    return "\n".join([
        "# Serving reliability",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB; "
        f"conditions: {result['conditions']}. One `serve` with its defaults "
        f"({result['workers']} workers), ResNet-18 at 224x224 (random weights, 1000 classes).",
        "",
        "| check | result |",
        "|---|---|",
        f"| malformed requests ({bad['distinct_cases']} distinct cases, cycled) | "
        f"{bad['requests']}: {bad['answers']} |",
        f"| 5xx answers to malformed requests | {five} |",
        f"| worker deaths (workers booted after start-up) | {result['worker_deaths']} |",
        f"| valid requests at C={good['concurrency']} | {good['requests']} in {good['seconds']} s"
        f" ({good['requests_per_second']} rps), errors: {good['errors'] or 0} |",
        f"| worker RSS after {good['warmup_requests']} warm-up requests -> end (MiB) | "
        f"{good['rss_mib_after_warmup']} -> {good['rss_mib_end']} |",
        f"| worker RSS growth after warm-up | {good['rss_growth_percent']} % |",
        f"| /ping every 250 ms, 2 s timeout, through both phases | {ping['count']} pings, "
        f"slowest {ping['max_ms']} ms, misses: {ping['misses'] or 0} |",
        "",
        "Connections closed without an answer are the truncated chunked bodies sent with the "
        "client's write side shut (`no answer` only if any).",
        "",
    ])


def main() -> None:
    parser = servers.bench_arguments(__doc__, "serve_reliability")
    parser.add_argument("--malformed", type=int, default=2400)
    parser.add_argument("--valid", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    result: dict = {"machine": servers.machine(), "conditions": args.conditions}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "opt_ml"
        servers.write_model(base, 18)
        process, port = servers.start_serve(base, Path(tmp) / "serve.log")
        try:
            process.wait_http(port, "/ping")
            workers_at_start = rss_by_worker(process.process.pid)
            result["workers"] = len(workers_at_start)
            watch = PingWatch(port)
            watch.start()
            result["malformed"] = malformed_phase(port, args.malformed)
            print(result["malformed"], flush=True)
            result["valid"] = valid_phase(port, servers.photo_jpeg(), args.valid,
                                          args.concurrency, process.process.pid)
            print(result["valid"], flush=True)
            watch.stop_event.set()
            watch.join()
            result["ping"] = {"count": len(watch.latencies),
                              "max_ms": round(1000 * max(watch.latencies), 1),
                              "misses": watch.misses}
            log = process.log_path.read_text(errors="replace")
            booted = log.count("Booting worker")
            result["worker_deaths"] = booted - result["workers"]
            result["workers_alive_at_end"] = sorted(rss_by_worker(process.process.pid)) == \
                sorted(workers_at_start)
        finally:
            process.stop()
    report.save(result, args.out, markdown)


if __name__ == "__main__":
    main()
