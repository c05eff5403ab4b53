"""A training job run as SageMaker runs it: the `train` command against a fake /opt/ml."""

from __future__ import annotations

import json
import re
import shutil

import torch
from safetensors.torch import load_file

from common import artifact
from common.models import build_classifier
from tests.conftest import FAST_HYPERPARAMETERS, make_opt_ml, run_train

SEED_METRIC_REGEX = r"Test set: Average loss: ([0-9\.]+)"


def test_successful_job_writes_success_artifact_and_metric_lines(tmp_path, digits_small):
    base = make_opt_ml(tmp_path, {**FAST_HYPERPARAMETERS, "top_k": "3"},
                       {"train": digits_small / "train",
                        "validation": digits_small / "validation"})
    result = run_train(base)

    assert result.returncode == 0, result.log[-3000:]
    assert result.succeeded and result.failure is None
    meta = artifact.load_metadata(base / "model")
    assert meta.class_names == [str(d) for d in range(10)]
    assert (meta.task, meta.architecture, meta.num_layers) == ("image_classification",
                                                               "resnet", 18)
    assert (meta.input.height, meta.input.width) == (32, 32)
    assert {"validation:accuracy", "validation:loss", "best_epoch"} <= set(meta.metrics)
    # The weights rebuild without any training code, as the server does it.
    model = build_classifier(meta.architecture, meta.num_layers, meta.num_classes)
    model.load_state_dict(artifact.load_state_dict(base / "model"))

    # SageMaker metric definitions: the seed's tuning regex and the built-in style lines.
    losses = re.findall(SEED_METRIC_REGEX, result.log)
    assert len(losses) == 1 and float(losses[0]) >= 0
    for epoch in (0, 1):
        for line in (f"Epoch[{epoch}] Train-accuracy=", f"Epoch[{epoch}] Validation-accuracy=",
                     f"Epoch[{epoch}] Validation-top_k_accuracy_3="):
            assert re.search(re.escape(line) + r"[0-9]+\.[0-9]+\n", result.log), line
    from train.metric_definitions import METRIC_DEFINITIONS

    for definition in METRIC_DEFINITIONS:
        if definition["Name"] != "train:loss" or "Train-loss" in result.log:
            assert re.search(definition["Regex"], result.log), definition


def test_both_hyperparameter_spellings_give_the_same_run(tmp_path, digits_small):
    """Plain strings and the SDK's JSON-quoted strings, built-in and script-mode names."""
    plain = {**FAST_HYPERPARAMETERS, "epochs": "1"}
    quoted = {k: json.dumps(v) for k, v in plain.items()}
    quoted["lr"] = quoted.pop("learning_rate")
    quoted["batch-size"] = quoted.pop("mini_batch_size")
    quoted["sagemaker_region"] = '"us-east-1"'
    quoted["_tuning_objective_metric"] = '"validation:accuracy"'
    runs = []
    for name, hps in (("plain", plain), ("quoted", quoted)):
        base = make_opt_ml(tmp_path / name, hps, {"train": digits_small / "train"})
        result = run_train(base)
        assert result.returncode == 0, result.log[-3000:]
        runs.append(load_file(str(base / "model" / artifact.WEIGHTS_FILE)))
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_unreadable_images_are_skipped_up_to_the_limit(tmp_path, digits_small):
    base = make_opt_ml(tmp_path, {**FAST_HYPERPARAMETERS, "epochs": "1", "max_bad_images": "2"},
                       {"train": digits_small / "train"})
    (base / "input/data/train/3/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (base / "input/data/train/4/empty.png").write_bytes(b"")
    result = run_train(base)
    assert result.returncode == 0, result.log[-3000:]
    assert "skipping unreadable image 3/broken.jpg" in result.log
    assert "skipping unreadable image 4/empty.png" in result.log

    (base / "input/data/train/5/third.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (base / "output/success").unlink()
    shutil.rmtree(base / "checkpoints")  # else the finished job would just re-export
    result = run_train(base)
    assert result.returncode == 1
    assert result.failure.startswith("ClientError: 3 images could not be decoded")
    assert "max_bad_images=2" in result.failure
