"""Fixtures for semantic segmentation: the synthetic data set, job trees, one trained model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import channel_config, make_opt_ml
from train.contract import TrainingEnv
from train.segmentation import synthetic

CHANNELS = ("train", "train_annotation", "validation", "validation_annotation", "label_map")

# Small and fast: resnet-18 on 64x64 crops, no worker processes, no ImageNet weights.
FAST = {
    "backbone": "resnet-18",
    "use_pretrained_model": "0",
    "num_classes": "3",
    "base_size": "64",
    "crop_size": "64",
    "mini_batch_size": "8",
    "optimizer": "adam",
    "learning_rate": "0.001",
    "seed": "0",
    "num_workers": "0",
}


# A Ground Truth manifest channel as SageMaker describes it to the container (here in File
# mode): the AttributeNames the notebook gave the SDK are not passed on.
MANIFEST_CHANNEL = channel_config("application/x-recordio", "File", wrapper="RecordIO")


def gt_job(root: Path, data: Path, *, input_mode: str = "File",
           channels: tuple[str, ...] = ("train", "validation"),
           **hyperparameters: str) -> TrainingEnv:
    """A fake /opt/ml for a job on ``synthetic.build_ground_truth`` data: manifest channels plus
    an ``images`` channel holding the photos and label PNGs."""
    present = tuple(name for name in channels if (data / name).exists())
    config = {name: {**MANIFEST_CHANNEL, "TrainingInputMode": input_mode} for name in present}
    config["images"] = channel_config("application/x-image")
    base = make_opt_ml(root, {**FAST, **hyperparameters},
                       {name: data / name for name in (*present, "images")},
                       input_config=config)
    return TrainingEnv.from_base_dir(base)


def seg_job(root: Path, data: Path, channels: tuple[str, ...] = CHANNELS,
            **hyperparameters: str) -> TrainingEnv:
    """A fake /opt/ml for a segmentation job on ``data`` (folders named like the channels)."""
    base = make_opt_ml(root, {**FAST, **hyperparameters},
                       {name: data / name for name in channels if (data / name).exists()})
    return TrainingEnv.from_base_dir(base)


@pytest.fixture(scope="session")
def seg_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.build(tmp_path_factory.mktemp("seg_data"), train=32, validation=8)


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """Two training images, no validation: for tests that fail before training."""
    return synthetic.build(tmp_path / "tiny", train=2, validation=0)


@pytest.fixture(scope="session")
def trained_fcn(seg_data: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[TrainingEnv, dict[str, float], str]:
    """FCN on resnet-18 trained for 12 epochs (about 20 s on 2 CPU cores): env, metrics, log."""
    from train.segmentation import run

    env = seg_job(tmp_path_factory.mktemp("trained_fcn"), seg_data, algorithm="fcn",
                  epochs="12")
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("train")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        final = run(env, lambda: False)
    finally:
        logger.removeHandler(handler)
    return env, final, "\n".join(records)

