"""The built-in semantic-segmentation hyperparameters: names, defaults, bad values."""

from __future__ import annotations

import pytest

from train.errors import UserError
from train.segmentation.hyperparameters import parse


def test_defaults_match_the_built_in() -> None:
    params = parse({"num_classes": "21"})
    assert (params.backbone, params.algorithm, params.use_pretrained_model) == (
        "resnet-50", "fcn", True)
    assert (params.base_size, params.crop_size, params.epochs) == (520, 240, 10)
    assert (params.learning_rate, params.optimizer, params.lr_scheduler) == (0.001, "sgd", "poly")
    assert (params.mini_batch_size, params.validation_mini_batch_size) == (16, 16)
    assert (params.early_stopping, params.early_stopping_min_epochs,
            params.early_stopping_patience, params.early_stopping_tolerance) == (False, 5, 4, 0.0)
    assert (params.gamma1, params.gamma2, params.momentum, params.weight_decay) == (
        0.9, 0.9, 0.9, 0.0001)


def test_seed_lab_hyperparameters_parse() -> None:
    # What the seed notebook's estimator.set_hyperparameters(...) writes (SDK-quoted strings).
    raw = {"backbone": '"resnet-50"', "algorithm": '"fcn"', "use_pretrained_model": '"True"',
           "crop_size": '"240"', "num_classes": '"21"', "epochs": '"10"',
           "learning_rate": '"0.0001"', "optimizer": '"rmsprop"', "lr_scheduler": '"poly"',
           "mini_batch_size": '"16"', "validation_mini_batch_size": '"16"',
           "early_stopping": '"True"', "early_stopping_patience": '"2"',
           "early_stopping_min_epochs": '"10"', "num_training_samples": '"1464"',
           "sagemaker_job_name": '"x"', "_tuning_objective_metric": "validation:mIOU"}
    params = parse(raw)
    assert params.optimizer == "rmsprop" and params.early_stopping and params.crop == 240


def test_crop_size_rounds_up_to_a_multiple_of_8() -> None:
    assert parse({"num_classes": "2", "crop_size": "250"}).crop == 256


@pytest.mark.parametrize(("raw", "message"), [
    ({"num_classes": "3", "algoritm": "fcn"}, "Did you mean 'algorithm'"),
    ({"num_classes": "3", "algorithm": "unet"}, "choose one of: fcn, psp, deeplab"),
    ({"num_classes": "3", "backbone": "resnet-152"}, "choose one of"),
    ({"num_classes": "255"}, "must be <= 254"),
    ({"num_classes": "1"}, "must be >= 2"),
    ({}, "num_classes is required"),
    ({"num_classes": "3", "crop_size": "16"}, "must be > 16"),
    ({"num_classes": "3", "lr_scheduler": "step"}, "needs lr_scheduler_step"),
    ({"num_classes": "3", "lr_scheduler_step": "5,3"}, "increasing positive epoch"),
    ({"num_classes": "3", "optimizer": "lamb"}, "sgd, adam, adagrad, nag, rmsprop"),
])
def test_bad_values_name_the_problem(raw: dict[str, str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse(raw)
