"""Helpers for the model-server tests: fake /opt/ml trees, test images, ``serve`` processes.

Every server runs in its own process group on a free port; ``Server.stop`` SIGTERMs the group,
then SIGKILLs whatever is left.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import artifact
from common.artifact import InputSpec, Metadata
from common.export import export_onnx
from common.models import build_classifier
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from tests.conftest import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
NUM_CLASSES = 10
CLASS_NAMES = [str(i) for i in range(NUM_CLASSES)]
READY_TIMEOUT_S = 60.0


def write_model(base_dir: Path, size: int = 32, seed: int = 0) -> Path:
    """A fake /opt/ml with a random-weight resnet18 classifier and its exported graph, as
    `train` writes them; returns base_dir."""
    torch.manual_seed(seed)
    network = build_classifier("resnet", 18, NUM_CLASSES)
    meta = Metadata(
        task=artifact.TASK_CLASSIFICATION,
        architecture="resnet",
        num_layers=18,
        num_classes=NUM_CLASSES,
        class_names=CLASS_NAMES,
        input=InputSpec(3, size, size, size, IMAGENET_MEAN, IMAGENET_STD),
    )
    artifact.save(base_dir / "model", network.state_dict(), meta)
    assert export_onnx(network, meta, base_dir / "model") is not None
    return base_dir


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (40, 30), seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt)
    return out.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Server:
    """A ``serve`` process on 127.0.0.1:<free port> with its log in a file."""

    def __init__(self, base_dir: Path, log_path: Path, env: Mapping[str, str] = {}) -> None:
        self.port = free_port()
        self.log_path = log_path
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SAGEMAKER_", "SM_VISION_"))}
        environ.update(
            SAGEMAKER_BASE_DIR=str(base_dir),
            SAGEMAKER_BIND_TO_PORT=str(self.port),
            SAGEMAKER_MODEL_SERVER_WORKERS="1",
            PYTHONUNBUFFERED="1",
        )
        environ.update(env)
        script = Path(sys.executable).with_name("serve")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "serve"]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def invoke(self, body: bytes, content_type: str, accept: str | None = None, **kw) -> Reply:
        headers = {"Content-Type": content_type}
        if accept is not None:
            headers["Accept"] = accept
        headers.update(kw.pop("headers", {}))
        return self.request("POST", "/invocations", body, headers, **kw)

    def wait_until(self, ready: bool = True, timeout: float = READY_TIMEOUT_S) -> Reply:
        """Poll /ping until it answers 200 (ready=True) or anything at all (ready=False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}:\n{self.log()}")
            try:
                reply = self.request("GET", "/ping", timeout=5)
            except OSError:
                time.sleep(0.1)
                continue
            if reply.status == 200 or not ready:
                return reply
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=30)
            # Whatever is left in the group: a hung master, or workers it orphaned.
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()
