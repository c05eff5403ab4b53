"""The images as SageMaker runs them: `docker run IMAGE train` and `docker run IMAGE serve`."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import FAST_HYPERPARAMETERS, free_port, make_opt_ml
from tests.container.conftest import docker, wait_for_ping

pytestmark = pytest.mark.container


def _train(image: str, base: Path) -> tuple[int, str]:
    result = docker("run", "--rm", "-v", f"{base}:/opt/ml", image, "train", check=False)
    return result.returncode, result.stdout + result.stderr


def test_train_image_trains_and_writes_the_artifact(images, tmp_path, digits_small):
    base = make_opt_ml(tmp_path, {**FAST_HYPERPARAMETERS, "epochs": "1"},
                       {"train": digits_small / "train",
                        "validation": digits_small / "validation"})
    code, log = _train(images[0], base)
    assert code == 0, log[-3000:]
    assert (base / "output/success").exists()
    meta = json.loads((base / "model/metadata.json").read_text())
    assert meta["class_names"] == [str(d) for d in range(10)]
    assert (base / "model/model.safetensors").stat().st_size > 1_000_000
    assert "Epoch[0] Validation-accuracy=" in log


def test_train_image_fails_a_bad_job_with_a_failure_file(images, tmp_path, digits_small):
    base = make_opt_ml(tmp_path, {**FAST_HYPERPARAMETERS, "optimizer": "adagrad"},
                       {"train": digits_small / "train"})
    code, _ = _train(images[0], base)
    assert code == 1
    assert (base / "output/failure").read_text().startswith("ClientError: hyperparameter "
                                                            "optimizer='adagrad'")


def test_serve_image_has_no_train_role(images):
    result = docker("run", "--rm", images[1], "train", check=False)
    assert result.returncode == 64
    assert "this image answers: serve" in result.stderr


@pytest.mark.parametrize("which", ["serve", "train"], ids=["serve-image", "train-image"])
def test_image_serves_the_model_and_stops_on_sigterm(which, images, trained_digits_model):
    image = images[1] if which == "serve" else images[0]
    model_dir, heldout = trained_digits_model
    port = free_port()
    container = docker(
        "run", "-d", "--network", "host", "-e", f"SAGEMAKER_BIND_TO_PORT={port}",
        "-e", "SAGEMAKER_MODEL_SERVER_WORKERS=1", "-v", f"{model_dir}:/opt/ml/model:ro",
        image, "serve",
    ).stdout.strip()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_ping(url, container)
        correct = 0
        for data, label in heldout[:20]:
            request = urllib.request.Request(f"{url}/invocations", data=data, method="POST",
                                             headers={"Content-Type": "application/x-image"})
            with urllib.request.urlopen(request, timeout=30) as response:
                probabilities = json.loads(response.read())
            assert len(probabilities) == 10
            correct += max(range(10), key=probabilities.__getitem__) == label
        assert correct >= 17

        started = time.monotonic()
        docker("stop", "--time", "30", container)
        assert time.monotonic() - started < 30
        state = json.loads(docker("inspect", container).stdout)[0]["State"]
        assert state["ExitCode"] == 0, state
    finally:
        docker("rm", "-f", container, check=False)
