"""Incremental semantic segmentation: a ``model`` channel with a previous job's model.tar.gz."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tests.conftest import channel_config, make_opt_ml
from tests.segmentation.conftest import CHANNELS, FAST
from tests.train.test_incremental import pack_model
from train.contract import MODEL_CONTENT_TYPE, TrainingEnv
from train.errors import UserError
from train.segmentation import run


def _job(root: Path, data: Path, model_dir: Path, **hps: str) -> TrainingEnv:
    channels = {name: data / name for name in CHANNELS if (data / name).exists()}
    channels["model"] = pack_model(model_dir, root.parent / f"{root.name}_model")
    config = {name: channel_config() for name in channels}
    config["model"] = channel_config(MODEL_CONTENT_TYPE)
    # use_pretrained_model keeps its built-in default (1): the model channel replaces ImageNet.
    hps = {k: v for k, v in {**FAST, **hps}.items() if k != "use_pretrained_model"}
    return TrainingEnv.from_base_dir(make_opt_ml(root, hps, channels, input_config=config))


def test_a_second_job_starts_at_the_first_jobs_miou(trained_fcn, seg_data, tmp_path, caplog):
    first, final, _ = trained_fcn
    env = _job(tmp_path / "second", seg_data, first.model_dir, algorithm="fcn", epochs="1")
    caplog.set_level(logging.INFO)
    run(env, lambda: False)
    start = re.search(r"the previous model scores validation mIOU ([0-9.]+)", caplog.text)
    assert start is not None
    assert float(start.group(1)) == pytest.approx(final["validation:mIOU"], abs=1e-6)


def test_another_backbone_or_algorithm_fails_naming_both(trained_fcn, seg_data, tmp_path):
    first, _, _ = trained_fcn
    env = _job(tmp_path / "job", seg_data, first.model_dir, algorithm="psp",
               backbone="resnet-34")
    with pytest.raises(UserError) as caught:
        run(env, lambda: False)
    message = str(caught.value)
    assert "backbone=resnet-18 in the previous model but backbone=resnet-34 in this job" in message
    assert "algorithm=fcn in the previous model but algorithm=psp in this job" in message
