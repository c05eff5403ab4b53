"""Shared fixtures: fake /opt/ml trees, small real image sets, and the `train` command."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from train.contract import OWN_TOOLS_CHANNEL_KEYS, SAGEMAKER_CHANNEL_KEYS

REPO = Path(__file__).resolve().parents[1]
# Files made by the tools we interoperate with (MXNet's im2rec, Ground Truth); provenance and
# licence in its README. Checked in, so a fresh clone runs every test.
REFERENCE_DATA = REPO / "tests" / "fixtures" / "reference"
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_local_test_script(name: str):
    """A ``local_test/<name>.py`` script (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "local_test" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _load_digits_builder():
    return load_local_test_script("digits_data")


def stop_process(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not exited after ``grace_s`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def channel_config(content_type: str | None = "application/x-image", mode: str = "File", *,
                   wrapper: str = "None", distribution: str = "FullyReplicated") -> dict:
    """One channel of ``inputdataconfig.json`` exactly as SageMaker writes it: ContentType (only
    when the job set one), TrainingInputMode, S3DistributionType and RecordWrapperType."""
    config = {"TrainingInputMode": mode, "S3DistributionType": distribution,
              "RecordWrapperType": wrapper}
    return config if content_type is None else {"ContentType": content_type, **config}


def write_input_config(base: Path, channels: dict[str, dict], *, own_tools: bool = False
                       ) -> None:
    """Write ``inputdataconfig.json``, refusing keys SageMaker never writes, so that no test
    passes on a field the platform does not send. ``own_tools``: the channels may also carry
    what our own tools add (``AttributeNames``), for the tests of that extension."""
    allowed = SAGEMAKER_CHANNEL_KEYS | (OWN_TOOLS_CHANNEL_KEYS if own_tools else frozenset())
    for name, config in channels.items():
        extra = set(config) - allowed
        assert not extra, f"channel {name!r}: SageMaker never writes {sorted(extra)}"
        missing = SAGEMAKER_CHANNEL_KEYS - {"ContentType"} - set(config)
        assert not missing, f"channel {name!r}: SageMaker always writes {sorted(missing)}"
    path = base / "input" / "config" / "inputdataconfig.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(channels))


def make_opt_ml(
    root: Path,
    hyperparameters: dict[str, str],
    channels: dict[str, Path | None],
    *,
    input_config: dict | None = None,
    resource_config: dict | None = None,
    own_tools: bool = False,
) -> Path:
    """A SageMaker-style tree: config files and each channel copied into place."""
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    if input_config is None:
        input_config = {name: channel_config() for name in channels}
    write_input_config(root, input_config, own_tools=own_tools)
    (config / "resourceconfig.json").write_text(json.dumps(
        resource_config or {"current_host": "algo-1", "hosts": ["algo-1"]}))
    for name, source in channels.items():
        target = root / "input" / "data" / name
        if source is None:
            continue
        shutil.copytree(source, target)
    return root


class JobOutput:
    """A job's status files, under ``self.base`` (its /opt/ml)."""

    base: Path

    @property
    def failure(self) -> str | None:
        path = self.base / "output" / "failure"
        return path.read_text() if path.exists() else None

    @property
    def succeeded(self) -> bool:
        return (self.base / "output" / "success").exists()


@dataclass
class TrainResult(JobOutput):
    returncode: int
    log: str
    base: Path


def train_env(base: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "PYTHONUNBUFFERED": "1", **extra}


def run_train(base: Path, timeout: float = 300, **extra_env: str) -> TrainResult:
    proc = subprocess.run([str(BIN / "train")], env=train_env(base, **extra_env),
                          capture_output=True, text=True, timeout=timeout)
    return TrainResult(proc.returncode, proc.stdout + proc.stderr, base)


# What train.engine keeps in /opt/ml/checkpoints/last.pt, for every task.
CHECKPOINT_KEYS = frozenset({
    "format", "task", "model", "optimizer", "scheduler", "scaler", "early_stopping", "progress",
    "meter", "best_state", "task_state", "rng", "seed", "fingerprint", "hyperparameters", "world",
    "debugger"})

# Small and fast: resnet18 at 32x32, few epochs, no worker processes.
FAST_HYPERPARAMETERS = {
    "num_layers": "18",
    "image_shape": "3,32,32",
    "epochs": "2",
    "mini_batch_size": "16",
    "optimizer": "adam",
    "learning_rate": "0.001",
    "seed": "0",
    "num_workers": "0",
}


@pytest.fixture(scope="session")
def digits_full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole demo dataset (train/validation/test folders of 32x32 PNG digits)."""
    out = tmp_path_factory.mktemp("digits_full")
    _load_digits_builder().build(out, size=32, seed=0)
    return out


@pytest.fixture(scope="session")
def digits_small(digits_full: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 training and 4 validation images per digit: enough to train for a few seconds."""
    out = tmp_path_factory.mktemp("digits_small")
    for split, per_class in (("train", 12), ("validation", 4)):
        for class_dir in sorted((digits_full / split).iterdir()):
            target = out / split / class_dir.name
            target.mkdir(parents=True)
            for image in sorted(class_dir.iterdir())[:per_class]:
                shutil.copy(image, target / image.name)
    return out


@pytest.fixture(scope="session")
def trained_digits_model(digits_full: Path, tmp_path_factory: pytest.TempPathFactory
                         ) -> tuple[Path, list[tuple[bytes, int]]]:
    """A real training run on the demo data; returns (model dir, held-out (PNG, label) pairs)."""
    base = make_opt_ml(
        tmp_path_factory.mktemp("trained_digits"),
        {**FAST_HYPERPARAMETERS, "epochs": "4", "mini_batch_size": "32", "num_workers": "1",
         "num_classes": "10"},
        {"train": digits_full / "train", "validation": digits_full / "validation"},
    )
    result = run_train(base, timeout=900)
    assert result.returncode == 0, result.log[-3000:]
    heldout = [
        (path.read_bytes(), int(path.parent.name))
        for path in sorted((digits_full / "test").rglob("*.png"))
    ]
    return base / "model", heldout
