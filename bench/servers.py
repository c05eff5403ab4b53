"""What the serving benches share: the models, the photo, and server processes to start and stop.

Every server runs in its own process group and is stopped by that group's id (SIGTERM, then
SIGKILL), never by name.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.machine import cpu_model
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
BIN = Path(sys.executable).parent
IMAGENET_CLASSES = 1000


def write_model(base: Path, depth: int, size: int = 224, classes: int = IMAGENET_CLASSES,
                seed: int = 0) -> Path:
    """A fake /opt/ml with a random-weight ResNet (the same weights for every server) and its
    exported graph, as `train` writes them. Returns the model directory."""
    import torch

    from common import artifact
    from common.artifact import InputSpec, Metadata
    from common.export import export_onnx
    from common.models import build_classifier
    from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD

    torch.manual_seed(seed)
    network = build_classifier("resnet", depth, classes).eval()
    meta = Metadata(
        task=artifact.TASK_CLASSIFICATION, architecture="resnet", num_layers=depth,
        num_classes=classes, class_names=[f"class_{i}" for i in range(classes)],
        input=InputSpec(3, size, size, size, IMAGENET_MEAN, IMAGENET_STD),
    )
    model_dir = base / "model"
    artifact.save(model_dir, network.state_dict(), meta)
    if export_onnx(network, meta, model_dir) is None:
        raise RuntimeError("ONNX export failed; see the log")
    return model_dir


def photo_jpeg(width: int = 500, height: int = 375, seed: int = 0, quality: int = 90) -> bytes:
    """A photo-like JPEG: smooth shapes and gradients with sensor-like noise (compresses like a
    photo, unlike uniform noise or a flat image)."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200 + 30, y / height * 180 + 40,
                     (x + y) / (width + height) * 150 + 60], axis=-1)
    image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        r = int(rng.integers(15, 90))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(2))
    pixels = np.asarray(image).astype(np.int16) + rng.normal(0, 6, (height, width, 3))
    out = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


class Process:
    """A server process in its own session, its output in a log file."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], log: Path,
                 cwd: Path = REPO) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(list(command), env=dict(env), cwd=cwd, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def wait_http(self, port: int, path: str, timeout: float = 300.0) -> float:
        """Seconds from process start to the first 200 on ``path``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.process.args[0]} exited with "
                                   f"{self.process.returncode}; see {self.log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", path)
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"no 200 on {path} after {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything the server orphaned
        self.process.wait()
        self._log.close()


def serve_env(base: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "SM_VISION"))}
    env.update(SAGEMAKER_BASE_DIR=str(base), SAGEMAKER_BIND_TO_PORT=str(port),
               PYTHONUNBUFFERED="1", **extra)
    return env


def start_serve(base: Path, log: Path, **extra_env: str) -> tuple[Process, int]:
    port = free_port()
    return Process([str(BIN / "serve")], serve_env(base, port, **extra_env), log), port


def bench_arguments(doc: str, name: str) -> argparse.ArgumentParser:
    """The options every serving bench takes: where to write, and how the machine was kept."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / name,
                        help="results path without suffix (.json and .md are written)")
    parser.add_argument("--conditions", default="nothing else running (run under flock -x "
                        "/work/locks/cpu.lock)", help="how the machine was kept quiet")
    return parser


def machine() -> dict:
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), "").split()
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu_model(),
        "cpu_features": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8",
                                     "avx512_vnni") if f in flags],
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
