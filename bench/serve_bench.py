#!/usr/bin/env python3
"""Serving throughput on this machine: the real server vs. the model alone.

For resnet18 with random weights at 224x224 (a real deployment's input) and 32x32 (the demo's),
this starts the ``serve`` command on a free local port and measures requests/s and p50/p99
latency of single-image JPEG/PNG invocations at concurrency 1, 4 and 8 (a bounded number of
requests each). Beside it, in this process: the single-image time of the model step alone
(preprocessed tensor -> probabilities) and of decode + preprocess + model (``serve.model``'s
path), the ceilings one worker cannot beat. Results go to bench/results/serve.{json,md}.
Timings are recorded, never asserted.

    .venv/bin/python bench/serve_bench.py [--sizes 224 32] [--concurrency 1 4 8]
        [--requests 60] [--workers N]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import artifact
from common.artifact import InputSpec, Metadata
from common.models import build_classifier
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD, decode_image
from serve import model as serve_model
from serve.environment import ServingEnv

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
NUM_CLASSES = 10


def write_model(base: Path, size: int) -> Path:
    torch.manual_seed(0)
    meta = Metadata(
        task=artifact.TASK_CLASSIFICATION,
        architecture="resnet",
        num_layers=18,
        num_classes=NUM_CLASSES,
        class_names=[str(i) for i in range(NUM_CLASSES)],
        input=InputSpec(3, size, size, size, IMAGENET_MEAN, IMAGENET_STD),
    )
    artifact.save(base / "model", build_classifier("resnet", 18, NUM_CLASSES).state_dict(), meta)
    return base


def payload(size: int) -> tuple[bytes, str]:
    """A photo-like image a little larger than the input (the server resizes and crops)."""
    rng = np.random.default_rng(0)
    side = max(size * 8 // 7, 8)
    coarse = rng.integers(0, 256, (side // 8 + 1, side // 8 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((side, side), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    if size >= 64:
        image.save(out, "JPEG", quality=90)
        return out.getvalue(), "image/jpeg"
    image.save(out, "PNG")
    return out.getvalue(), "image/png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, base: Path, workers: int | None, log: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
        env.update(SAGEMAKER_BASE_DIR=str(base), SAGEMAKER_BIND_TO_PORT=str(self.port))
        if workers:
            env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(workers)
        script = Path(sys.executable).with_name("serve")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "serve"]
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server never became ready")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


def load(port: int, body: bytes, content_type: str, concurrency: int, requests: int) -> dict:
    """``requests`` invocations from ``concurrency`` keep-alive clients."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            started = time.perf_counter()
            conn.request("POST", "/invocations", body, headers)
            resp = conn.getresponse()
            resp.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors += resp.status != 200
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ms = sorted(1000 * t for t in latencies)
    return {
        "concurrency": concurrency,
        "requests": len(ms),
        "errors": errors,
        "requests_per_second": round(len(ms) / wall, 1),
        "p50_ms": round(ms[len(ms) // 2], 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1),
    }


def median_ms(step: Callable[[], object], repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 2)


def in_process(base: Path, body: bytes, repeats: int) -> dict:
    classifier = serve_model.load(base / "model", serve_model.pick_device(0))
    tensor = classifier.transform(decode_image(body)).unsqueeze(0).to(classifier.device)

    def forward() -> None:
        with torch.inference_mode():
            torch.softmax(classifier.network(tensor), dim=1).cpu()

    return {
        "device": str(classifier.device),
        "torch_threads": torch.get_num_threads(),
        "model_step_ms": median_ms(forward, repeats),
        "decode_preprocess_model_ms": median_ms(
            lambda: serve_model.predict(classifier, [body], timeout_s=None), repeats
        ),
    }


def bench_size(size: int, args: argparse.Namespace, tmp: Path) -> dict:
    base = write_model(tmp / f"opt_ml_{size}", size)
    body, content_type = payload(size)
    # A fresh process with the workers' OpenMP setting (serve.gunicorn_conf.post_fork), which
    # libgomp reads only when torch first loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        ceiling = pool.apply(in_process, (base, body, args.repeats))
    result = {
        "input": f"{size}x{size}",
        "payload": f"{content_type}, {len(body)} bytes",
        "in_process": ceiling,
    }
    server = Server(base, args.workers, tmp / f"serve_{size}.log")
    try:
        server.wait_ready()
        load(server.port, body, content_type, 2, 10)  # first requests on every worker
        result["server"] = [
            load(server.port, body, content_type, c, args.requests) for c in args.concurrency
        ]
    finally:
        server.stop()
    return result


def markdown(result: dict) -> str:
    machine, config = result["machine"], result["config"]
    lines = [
        "# Serving throughput",
        "",
        f"resnet18 (random weights, {NUM_CLASSES} classes) behind `serve` (gunicorn gthread, "
        f"{config['workers']} worker(s) x {config['threads_per_worker']} threads), single-image "
        f"requests, {config['requests']} per concurrency level, client and server on the same "
        f"machine: {machine['cpus']} CPUs, {machine['gpu'] or 'no GPU'}, torch {machine['torch']}, "
        f"load average {machine['load_average']} at the start.",
        "",
    ]
    for size in result["sizes"]:
        ip = size["in_process"]
        ceiling = 1000 / ip["decode_preprocess_model_ms"]
        lines += [
            f"## {size['input']} ({size['payload']})",
            "",
            f"In process on {ip['device']} ({ip['torch_threads']} threads): model step "
            f"{ip['model_step_ms']} ms, decode + preprocess + model "
            f"{ip['decode_preprocess_model_ms']} ms per image (one worker's ceiling: "
            f"{ceiling:.1f} requests/s).",
            "",
            "| concurrency | requests/s | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['concurrency']} | {r['requests_per_second']} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['errors']} |"
            for r in size["server"]
        ]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 32])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=60, help="per concurrency level")
    parser.add_argument("--repeats", type=int, default=20, help="in-process timing runs")
    parser.add_argument("--workers", type=int, default=None, help="default: the server's")
    args = parser.parse_args()

    env = ServingEnv.from_env(
        {"SAGEMAKER_MODEL_SERVER_WORKERS": str(args.workers)} if args.workers else {}
    )
    result = {
        "machine": {
            "cpus": env.cpus,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "processor": platform.processor(),
            "torch": torch.__version__,
            "load_average": round(os.getloadavg()[0], 2),
        },
        "config": {
            "model": "resnet18",
            "workers": env.workers,
            "threads_per_worker": env.threads,
            "requests": args.requests,
            "concurrency": args.concurrency,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        result["sizes"] = [bench_size(size, args, Path(tmp)) for size in args.sizes]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "serve.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
