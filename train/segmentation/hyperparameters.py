"""Hyperparameters of the built-in semantic-segmentation algorithm, with its names and defaults.

Parsing follows ``train.hyperparameters`` (same ``hp()`` declarations, value conversion, quoting
and messages); only the schema differs. ``crop_size`` is rounded up to a multiple of 8, as the
built-in does.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.segmentation import ALGORITHMS, BACKBONES
from train.errors import UserError
from train.hyperparameters import (
    IGNORED_NAMES,
    IGNORED_PREFIXES,
    EngineHyperparameters,
    _convert,
    _unquote,
    attribute_names_hp,
    check_engine_settings,
    hp,
    parse_epoch_list,
    pipe_wait_seconds_hp,
    shuffle_buffer_size_hp,
)

OPTIMIZERS = ("sgd", "adam", "adagrad", "nag", "rmsprop")
SCHEDULERS = ("poly", "cosine", "step")


@dataclass(frozen=True)
class SegmentationHyperparameters(EngineHyperparameters):
    # --- network ---
    backbone: str = hp("resnet-50", "str", "Encoder backbone.", choices=BACKBONES)
    algorithm: str = hp("fcn", "str", "fcn, psp (pyramid pooling) or deeplab (DeepLabV3).",
                        choices=ALGORITHMS)
    use_pretrained_model: bool = hp(
        True, "bool", "Start the backbone from ImageNet weights, read from the `weights` channel "
        "or the TORCH_HOME cache (never downloaded)."
    )
    # --- data ---
    num_classes: int | None = hp(None, "int", "Number of classes (required).", min=2, max=254)
    num_training_samples: int | None = hp(
        None, "int", "Number of training images: required in Pipe mode, where it plans the "
        "learning-rate schedule; in File mode a mismatch is logged.", min=1
    )
    base_size: int = hp(520, "int", "Long side before the random 0.5-2.0 scale.", gt=16)
    crop_size: int = hp(240, "int", "Square training crop (rounded up to a multiple of 8).",
                        gt=16)
    # --- training ---
    epochs: int = hp(10, "int", "Passes over the training data.", min=1)
    learning_rate: float = hp(0.001, "float", "Initial learning rate.", gt=0.0, max=1.0)
    optimizer: str = hp("sgd", "str", "Optimizer.", choices=OPTIMIZERS)
    momentum: float = hp(0.9, "float", "Momentum for sgd, nag and rmsprop.", min=0.0, max=1.0)
    weight_decay: float = hp(0.0001, "float", "L2 weight decay.", min=0.0, max=1.0)
    lr_scheduler: str = hp("poly", "str", "Learning-rate schedule.", choices=SCHEDULERS)
    lr_scheduler_factor: float = hp(0.1, "float", "step: multiply the rate by this.",
                                    gt=0.0, max=1.0)
    lr_scheduler_step: str | None = hp(None, "str", "step: comma-separated epochs, e.g. '5,8'.")
    mini_batch_size: int = hp(16, "int", "Training batch size.", min=1)
    validation_mini_batch_size: int = hp(16, "int", "Validation batch size.", min=1)
    gamma1: float = hp(0.9, "float", "rmsprop: decay of the squared-gradient average.",
                       min=0.0, max=1.0)
    gamma2: float = hp(0.9, "float", "rmsprop: momentum term (accepted; `momentum` is used).",
                       min=0.0, max=1.0)
    early_stopping: bool = hp(False, "bool", "Stop when validation mIOU stops improving.")
    early_stopping_min_epochs: int = hp(5, "int", "Epochs before early stopping may act.", min=1)
    early_stopping_patience: int = hp(4, "int", "Epochs without improvement before stopping.",
                                      min=1)
    early_stopping_tolerance: float = hp(
        0.0, "float", "Relative mIOU improvement below which an epoch counts as none.",
        min=0.0, max=1.0,
    )
    # --- ours ---
    pipe_wait_seconds: float = pipe_wait_seconds_hp()
    attribute_names: str | None = attribute_names_hp()
    shuffle_buffer_size: int = shuffle_buffer_size_hp(256, "training pairs")

    @property
    def crop(self) -> int:
        return -(-self.crop_size // 8) * 8

    @property
    def lr_steps(self) -> list[int]:
        return parse_epoch_list(self.lr_scheduler_step) if self.lr_scheduler_step else []

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(SegmentationHyperparameters)}
# Names that only the segmentation algorithm has: their presence selects it.
SEGMENTATION_ONLY = frozenset({"backbone", "algorithm", "base_size", "crop_size", "gamma1",
                               "gamma2", "lr_scheduler",
                               "validation_mini_batch_size"})


def parse(raw: Mapping[str, str]) -> SegmentationHyperparameters:
    values: dict[str, Any] = {}
    for name, text in raw.items():
        if name in IGNORED_NAMES or name.startswith(IGNORED_PREFIXES):
            continue
        spec = FIELDS.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, FIELDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UserError(f"unknown semantic-segmentation hyperparameter {name!r}.{hint} "
                            f"Valid names: {', '.join(sorted(FIELDS))}")
        values[name] = _convert(name, _unquote(text), spec)
    if values.get("num_classes") is None:
        raise UserError("hyperparameter num_classes is required: the number of classes in the "
                        "annotations (2-254), background included; 255 marks ignored pixels")
    params = SegmentationHyperparameters(**values)
    params.lr_steps  # noqa: B018 - validates lr_scheduler_step
    check_engine_settings(params, params.epochs)
    if params.lr_scheduler == "step" and not params.lr_steps:
        raise UserError("lr_scheduler=step needs lr_scheduler_step, e.g. lr_scheduler_step=5,8")
    return params
