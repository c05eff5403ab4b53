"""The CPU serving image (no torch), the images' usage text, and what a pushed image must not
carry: as a new user would try them."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import free_port
from tests.container.conftest import TRAIN_IMAGE, docker, wait_for_ping

pytestmark = pytest.mark.container
# The CPU image's budget (issue: a CPU endpoint pulls the image on every scale-out).
MAX_CPU_IMAGE_BYTES = 1.5e9
# Same answers as the torch image on CPU: both run model.onnx on OpenVINO by default.
SAME_ANSWER_ATOL = 1e-6


def _serve(image: str, model_dir: Path, *env: str) -> tuple[str, str]:
    port = free_port()
    args = ["run", "-d", "--network", "host", "-e", f"SAGEMAKER_BIND_TO_PORT={port}"]
    for item in env:
        args += ["-e", item]
    container = docker(*args, "-v", f"{model_dir}:/opt/ml/model", image, "serve").stdout.strip()
    return container, f"http://127.0.0.1:{port}"


def _probabilities(url: str, heldout: list[tuple[bytes, int]]) -> np.ndarray:
    rows = []
    for data, _ in heldout:
        request = urllib.request.Request(f"{url}/invocations", data=data, method="POST",
                                         headers={"Content-Type": "application/x-image"})
        with urllib.request.urlopen(request, timeout=60) as response:
            rows.append(json.loads(response.read()))
    return np.array(rows)


def test_cpu_image_is_small_and_has_no_torch(cpu_image):
    size = int(docker("image", "inspect", "--format", "{{.Size}}", cpu_image).stdout)
    assert size <= MAX_CPU_IMAGE_BYTES, f"{cpu_image} is {size / 1e9:.2f} GB"
    found = docker("run", "--rm", "--entrypoint", "python", cpu_image, "-c",
                   "import importlib.util as u; print(u.find_spec('torch'), "
                   "u.find_spec('openvino') is not None)").stdout.split()
    assert found == ["None", "True"]


def test_cpu_image_answers_like_the_torch_image(images, cpu_image, trained_digits_model):
    model_dir, heldout = trained_digits_model
    answers = {}
    for image in (cpu_image, images[1]):
        container, url = _serve(image, model_dir, "SAGEMAKER_MODEL_SERVER_WORKERS=1")
        try:
            wait_for_ping(url, container)
            answers[image] = _probabilities(url, heldout[:30])
        finally:
            docker("rm", "-f", container, check=False)
    cpu, torch_image = answers[cpu_image], answers[images[1]]
    assert (cpu.argmax(1) == torch_image.argmax(1)).all()
    np.testing.assert_allclose(cpu, torch_image, atol=SAME_ANSWER_ATOL)
    labels = np.array([label for _, label in heldout[:30]])
    assert (cpu.argmax(1) == labels).mean() >= 0.85


def test_cpu_image_waits_for_a_model_then_serves_it(cpu_image, trained_digits_model, tmp_path):
    """`docker compose --profile cpu up train-cpu serve-cpu` with an empty model/."""
    model_dir, heldout = trained_digits_model
    empty = tmp_path / "model"
    empty.mkdir()
    empty.chmod(0o777)
    container, url = _serve(cpu_image, empty, "SAGEMAKER_MODEL_SERVER_WORKERS=1")
    try:
        deadline = time.monotonic() + 60
        while "no model yet" not in docker("logs", container).stdout:
            assert time.monotonic() < deadline, docker("logs", container).stdout
            time.sleep(0.5)
        for name in ("model.safetensors", "model.onnx", "metadata.json"):  # metadata last
            shutil.copy(model_dir / name, empty / name)
        wait_for_ping(url, container)
        assert _probabilities(url, heldout[:1]).shape == (1, 10)
    finally:
        docker("rm", "-f", container, check=False)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_images_usage(images, cpu_image, flag):
    for image in (*images, cpu_image):
        result = docker("run", "--rm", image, flag, check=False)
        assert result.returncode == 0, result.stderr
        assert "usage: docker run" in result.stdout and "serve" in result.stdout
        assert "exec" not in result.stdout.split("\n")[0]
    assert "train" in docker("run", "--rm", TRAIN_IMAGE, "--help").stdout


def test_no_build_machine_ca_bundle_or_pip_conf_in_the_images(images, cpu_image):
    for image in (*images, cpu_image):
        listed = docker("run", "--rm", "--entrypoint", "sh", image, "-c",
                        "ls /etc/pip.conf /etc/xdg/pip /etc/ssl/host-ca-bundle.crt /tmp/build-ca.* "
                        "/root/.config/pip /root/.pip 2>/dev/null; true").stdout
        assert listed.strip() == "", f"{image}: {listed}"
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
        assert "host-ca-bundle" not in history and "pip.conf" not in history
