"""Training: the networks, the learnable synthetic data set, metrics, artifact, early stopping."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import torch

from common import artifact
from common.segmentation import ALGORITHMS, build_segmenter
from tests.conftest import BIN, REPO
from tests.segmentation.conftest import seg_job
from train.segmentation import is_segmentation_job, run


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_has_an_aux_head_and_keeps_the_input_size(algorithm: str) -> None:
    network = build_segmenter(algorithm, "resnet-18", 5).eval()
    with torch.inference_mode():
        out = network(torch.zeros(1, 3, 48, 40))
    assert out["out"].shape == out["aux"].shape == (1, 5, 48, 40)


def test_psp_on_resnet_50_uses_the_dilated_backbone() -> None:
    network = build_segmenter("psp", "resnet-50", 4).eval()
    with torch.inference_mode():
        features = network.backbone(torch.zeros(1, 3, 64, 64))
    assert features["out"].shape == (1, 2048, 8, 8)  # output stride 8


def test_imagenet_backbone_weights_load_from_the_weights_channel(tmp_path: Path,
                                                                 tiny_data: Path) -> None:
    from torchvision.models import resnet18

    torch.manual_seed(1)
    imagenet = resnet18(weights=None).state_dict()
    (tiny_data / "weights").mkdir()
    torch.save(imagenet, tiny_data / "weights" / "resnet18-f37072fd.pth")
    env = seg_job(tmp_path / "job", tiny_data,
                  channels=("train", "train_annotation", "label_map", "weights"),
                  use_pretrained_model="1", epochs="1", learning_rate="0.0000001",
                  optimizer="sgd", momentum="0")
    run(env, lambda: False)
    saved = artifact.load_state_dict(env.model_dir)
    assert torch.allclose(saved["backbone.conv1.weight"], imagenet["conv1.weight"], atol=1e-4)


def test_fcn_reaches_miou_090_and_logs_the_built_in_metrics(trained_fcn) -> None:
    env, final, log = trained_fcn
    assert final["validation:mIOU"] >= 0.9, log
    scores = [float(v) for v in re.findall(r"validation:mIOU=([0-9\.]+)", log)]
    accuracies = re.findall(r"validation:pixel_accuracy=([0-9\.]+)", log)
    assert len(scores) == len(accuracies) == 12
    assert max(scores) == pytest.approx(final["validation:mIOU"], abs=1e-6)
    assert "#quality_metric: host=algo-1, epoch=11, validation mIOU <score>=" in log
    meta = artifact.load_metadata(env.model_dir)
    assert (meta.task, meta.architecture, meta.backbone, meta.num_layers) == (
        "semantic_segmentation", "fcn", "resnet-18", 18)
    assert meta.num_classes == 3 and meta.input.height == 64


@pytest.mark.parametrize(("algorithm", "optimizer", "scheduler"), [
    ("psp", "rmsprop", "poly"), ("deeplab", "sgd", "cosine"),
])
def test_other_algorithms_train_and_save(tmp_path: Path, seg_data: Path, algorithm: str,
                                         optimizer: str, scheduler: str) -> None:
    env = seg_job(tmp_path, seg_data, algorithm=algorithm, optimizer=optimizer,
                  lr_scheduler=scheduler, epochs="2", learning_rate="0.001")
    final = run(env, lambda: False)
    assert 0.0 < final["validation:mIOU"] <= 1.0
    assert artifact.load_metadata(env.model_dir).architecture == algorithm


def test_early_stopping_on_miou(tmp_path: Path, seg_data: Path) -> None:
    # learning_rate ~0: mIOU cannot improve, so patience 1 after min 2 epochs stops at epoch 2.
    env = seg_job(tmp_path, seg_data, epochs="6", learning_rate="0.0000001", optimizer="sgd",
                  early_stopping="1", early_stopping_min_epochs="2",
                  early_stopping_patience="1", lr_scheduler="step", lr_scheduler_step="3")
    final = run(env, lambda: False)
    assert final["best_epoch"] <= 1.0
    assert json.loads((env.model_dir / "metadata.json").read_text())["metrics"]


def test_dispatch_rule(tmp_path: Path, tiny_data: Path) -> None:
    env = seg_job(tmp_path / "a", tiny_data, channels=("train",))
    assert is_segmentation_job(env)  # backbone in the hyperparameters
    from train.contract import TrainingEnv

    assert not is_segmentation_job(TrainingEnv(base_dir=tmp_path, hyperparameters={
        "num_layers": "18"}))


def test_train_command_fails_with_client_error_and_failure_file(tmp_path: Path,
                                                                tiny_data: Path) -> None:
    (tiny_data / "train_annotation" / "train_0001.png").unlink()
    env = seg_job(tmp_path / "job", tiny_data)
    proc = subprocess.run([str(BIN / "train")], cwd=REPO, capture_output=True, text=True,
                          timeout=120,
                          env={**os.environ, "SAGEMAKER_BASE_DIR": str(env.base_dir)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failure = (env.base_dir / "output" / "failure").read_text()
    assert failure.startswith("ClientError: 1 image(s) in channel 'train' have no annotation")
