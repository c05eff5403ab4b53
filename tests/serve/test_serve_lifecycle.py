"""Process lifecycle: start from the environment, refuse a bad model, drain on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.serve.serving_helpers import REPO_ROOT, image_bytes, npy_bytes

DEADLINE_S = 60.0


def wait_for_log(server, text: str) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        log = server.log()
        if text in log:
            return log
        assert server.process.poll() is None, log
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never logged:\n{server.log()}")


def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(start_server, model_base):
    server = start_server(model_base)
    server.wait_until(ready=True)
    pixels = np.random.default_rng(8).integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        headers = {"Content-Type": "application/x-npy"}
        conn.request("POST", "/invocations", npy_bytes(pixels), headers)
        time.sleep(0.2)  # the worker has accepted it and is running the model
        signalled = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)  # what `docker stop` sends to PID 1
        resp = conn.getresponse()
        assert resp.status == 200
        assert np.asarray(json.loads(resp.read())).shape == (1000, 10)
    finally:
        conn.close()
    assert server.process.wait(timeout=30) == 0
    assert time.monotonic() - signalled < 30
    log = server.log()
    assert log.index("Handling signal: term") < log.index("POST /invocations"), "not in flight"
    with pytest.raises(ConnectionRefusedError):
        server.request("GET", "/ping", timeout=2)


def test_the_master_never_loads_torch(server):
    """CUDA must not be initialized before fork; the master does not even import torch."""
    maps = Path(f"/proc/{server.process.pid}/maps")
    if not maps.exists():
        pytest.skip("needs Linux /proc")
    assert "libtorch" not in maps.read_text()


def _corrupt_metadata(model_dir: Path) -> None:
    (model_dir / "metadata.json").write_text("{ this is not json")


def _missing_weights(model_dir: Path) -> None:
    (model_dir / "model.safetensors").unlink()
    (model_dir / "model.onnx").unlink()  # the graph alone would serve


def _wrong_shapes(model_dir: Path) -> None:
    meta = json.loads((model_dir / "metadata.json").read_text())
    meta["num_classes"] = 3
    meta["class_names"] = ["a", "b", "c"]
    (model_dir / "metadata.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("break_model", "reason"),
    [
        (_corrupt_metadata, "is not valid JSON"),
        (_missing_weights, "no model.safetensors"),
        (_wrong_shapes, "do not fit resnet"),
    ],
    ids=["corrupt-metadata", "missing-weights", "wrong-shapes"],
)
def test_a_broken_model_keeps_ping_failing_with_the_reason_logged(
    start_server, model_base, tmp_path, break_model, reason
):
    base = tmp_path / "opt_ml"
    shutil.copytree(model_base, base)
    break_model(base / "model")
    server = start_server(base)
    log = wait_for_log(server, "model failed to load")
    assert reason in log

    ping = server.request("GET", "/ping")
    assert ping.status == 503
    assert reason in json.loads(ping.body)["error"]
    invocation = server.invoke(image_bytes(), "image/png")
    assert invocation.status == 503
    assert reason in json.loads(invocation.body)["error"]
    assert server.process.poll() is None  # alive and honest, not crash-looping


def test_a_bad_environment_variable_stops_startup_with_a_clear_message(model_base):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    env.update(SAGEMAKER_BASE_DIR=str(model_base), SAGEMAKER_MODEL_SERVER_WORKERS="zero")
    done = subprocess.run(
        [sys.executable, "-m", "serve"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "SAGEMAKER_MODEL_SERVER_WORKERS='zero'" in done.stdout


def test_an_empty_model_dir_waits_then_serves_the_model_once_it_appears(
    start_server, model_base, tmp_path
):
    """docker compose starts training and serving together: serve must pick the model up."""
    base = tmp_path / "opt_ml"
    (base / "model").mkdir(parents=True)
    server = start_server(base)
    wait_for_log(server, "no model yet")
    ping = server.request("GET", "/ping")
    assert ping.status == 503
    assert "no metadata.json" in json.loads(ping.body)["error"]
    # What training does: weights and graph first, metadata.json last.
    for name in ("model.safetensors", "model.onnx", "metadata.json"):
        shutil.copy(model_base / "model" / name, base / "model" / name)
    server.wait_until(ready=True)
    assert server.invoke(image_bytes(), "image/png").status == 200
