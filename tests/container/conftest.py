"""The container tier: runs the built images. Needs a reachable Docker engine and `make build`.

Skipped, with a one-line reason, when no engine is reachable or the images are not built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request

import pytest

TRAIN_IMAGE = os.environ.get("SM_VISION_TRAIN_IMAGE", "sm-vision-train:latest")
SERVE_IMAGE = os.environ.get("SM_VISION_SERVE_IMAGE", "sm-vision-serve:latest")
SERVE_CPU_IMAGE = os.environ.get("SM_VISION_SERVE_CPU_IMAGE", "sm-vision-serve-cpu:latest")


def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def wait_for_ping(url: str, container: str, deadline_s: float = 120) -> None:
    """Poll ``url``/ping until it answers 200; the container's log in the failure otherwise."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    logs = docker("logs", container, check=False)
    raise AssertionError(f"/ping never answered 200:\n{logs.stdout}\n{logs.stderr}")


def _skip(reason: str) -> None:
    # CI sets this: there, a skipped container tier is a failure.
    if os.environ.get("SM_VISION_REQUIRE_CONTAINER_TESTS") == "1":
        pytest.fail(f"container tier required but {reason}")
    pytest.skip(f"container tier: {reason}")


def _engine_and_images(names: tuple[str, ...]) -> None:
    if shutil.which("docker") is None:
        _skip("the docker CLI is not installed")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        _skip("no Docker engine reachable (start one and set DOCKER_HOST, or run "
              "`make test-container`)")
    for image in names:
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True
                          ).returncode != 0:
            _skip(f"image {image} is not built (run `make build`)")


@pytest.fixture(scope="session")
def images() -> tuple[str, str]:
    """(training image, torch serving image)."""
    _engine_and_images((TRAIN_IMAGE, SERVE_IMAGE))
    return TRAIN_IMAGE, SERVE_IMAGE


@pytest.fixture(scope="session")
def cpu_image() -> str:
    """The CPU serving image (no torch)."""
    _engine_and_images((SERVE_CPU_IMAGE,))
    return SERVE_CPU_IMAGE
