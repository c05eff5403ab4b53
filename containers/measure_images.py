#!/usr/bin/env python3
"""Size of each built image, and the serving images' cold start on a ResNet-50 artifact.

Cold start: from `docker start` of a created `IMAGE serve` container (pulling and creating it
are not counted) to the first 200 on /ping, which the server answers only after a warm-up
inference; one request is then sent, and its status recorded. The artifact is a random-weight
ResNet-50 (1000 classes, 224x224) with its model.onnx, written by the project's own code.
Needs a Docker engine and the built images. .ci/run prints this after `make build`; figures
are printed, never asserted.

    .venv/bin/python containers/measure_images.py [--prefix sm-vision] [--runs 3] [--json F]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("train", "serve", "serve-cpu")
SERVING = ("serve-cpu", "serve")
GB = 1e9


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def size_bytes(image: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image).strip())


def photo() -> bytes:
    sys.path.insert(0, str(REPO))
    from bench.servers import photo_jpeg

    return photo_jpeg()


def cold_start(image: str, model_dir: Path, port: int, body: bytes) -> dict:
    container = docker("create", "--network", "host", "-e", f"SAGEMAKER_BIND_TO_PORT={port}",
                       "-v", f"{model_dir}:/opt/ml/model:ro", image, "serve").strip()
    try:
        started = time.monotonic()
        docker("start", container)
        while time.monotonic() - started < 300:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        else:
            raise RuntimeError(f"{image}: no /ping 200 within 300 s:\n"
                               + docker("logs", container))
        ping = time.monotonic() - started
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/invocations", body, {"Content-Type": "image/jpeg"})
        response = conn.getresponse()
        response.read()
        return {"ping_200_s": round(ping, 2), "first_request_status": response.status}
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prefix", default="sm-vision")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from bench.servers import free_port, write_model

    result: dict = {"sizes_gb": {}, "cold_start_resnet50": {}}
    for target in TARGETS:
        image = f"{args.prefix}-{target}:latest"
        result["sizes_gb"][image] = round(size_bytes(image) / GB, 2)
        print(f"{image}: {result['sizes_gb'][image]} GB", flush=True)
    body = photo()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_model(Path(tmp), 50)
        for target in SERVING:
            image = f"{args.prefix}-{target}:latest"
            runs = [cold_start(image, model_dir, free_port(), body) for _ in range(args.runs)]
            times = [run["ping_200_s"] for run in runs]
            result["cold_start_resnet50"][image] = {"runs": runs,
                                                    "median_s": statistics.median(times)}
            print(f"{image}: cold start (docker start -> /ping 200, ResNet-50) median "
                  f"{statistics.median(times)} s of {times}; first request: "
                  f"{[run['first_request_status'] for run in runs]}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
