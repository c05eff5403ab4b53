"""Hyperparameters: the built-in image-classification names, the script-mode aliases, our extras.

``hyperparameters.json`` values are always strings, sometimes JSON-quoted by the SageMaker SDK
(``"\\"0.01\\""``); both spellings parse to the same value. An unknown name or a bad value is a
``UserError`` naming it and listing what is valid. Names SageMaker adds itself (``sagemaker_*``,
``_tuning_objective_metric``) are accepted and ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.models import CLASSIFICATION_ARCHITECTURES, RESNET_DEPTHS
from train.errors import UserError

IGNORED_PREFIXES = ("sagemaker_",)
IGNORED_NAMES = frozenset({"_tuning_objective_metric"})

OPTIMIZERS = ("sgd", "adam", "rmsprop", "nag")
PRECISIONS = ("float32", "float16", "bfloat16")
AUGMENTATIONS = ("crop", "crop_color", "crop_color_transform")
FINETUNE_MODES = ("auto", "head", "full")
DATA_FORMATS = ("auto", "folder", "lst", "recordio", "manifest")
KV_STORES = ("device", "local", "dist_sync", "dist_async", "dist_device_sync")


def hp(default: Any, kind: str, doc: str, **rules: Any) -> Any:
    """Declare one hyperparameter: its default, value kind, documentation and rules.

    rules: ``choices``, ``min``/``max`` (inclusive), ``gt`` (exclusive minimum), ``aliases``.
    """
    return field(default=default, metadata={"kind": kind, "doc": doc, **rules})


# Pipe-mode settings, declared alike by classification and segmentation.
def pipe_wait_seconds_hp() -> Any:
    return hp(300.0, "float", "Pipe mode: how long to wait for a channel's next FIFO to appear.",
              gt=0.0, max=86400.0)


def attribute_names_hp() -> Any:
    return hp(None, "str", "Pipe mode, augmented manifests: the AttributeNames given to the SDK, "
              "in order (e.g. source-ref,my-job,my-job-metadata), when the stream carries more "
              "than the image and the label. SageMaker does not pass them to the container.")


def shuffle_buffer_size_hp(default: int, what: str) -> Any:
    return hp(default, "int", f"Pipe mode: {what} held in the shuffle buffer (0 or 1: stream "
              "order).", min=0)


@dataclass(frozen=True)
class EngineHyperparameters:
    """Settings of the training engine itself, the same for every task (our additions to the
    built-in names; ``syncbn`` is the built-in segmentation algorithm's)."""

    seed: int | None = hp(None, "int", "Seed every random generator; runs become repeatable.",
                          min=0)
    num_workers: int | None = hp(
        None, "int", "Data-loading processes per training process, kept for the whole job "
        "(default with a GPU: one per core but one, at most 8 per GPU; on CPU: cores // 4).",
        min=0
    )
    checkpoint_frequency: int | None = hp(
        None, "int", "Save a checkpoint every N epochs (default every epoch).", min=1
    )
    precision_dtype: str = hp(
        "float32", "str", "Mixed precision on CUDA (float16/bfloat16); CPU runs float32.",
        choices=PRECISIONS,
    )
    syncbn: bool = hp(
        False, "bool", "Distributed training: synchronize BatchNorm statistics over every "
        "process (SyncBatchNorm), as one large batch would have them."
    )
    processes_per_host: int | None = hp(
        None, "int", "Training processes per instance (default: one per GPU, else 1); on CPU "
        "several processes split the cores (gloo).", min=1, max=64
    )


def check_engine_settings(params: EngineHyperparameters, epochs: int) -> None:
    if params.checkpoint_frequency is not None and params.checkpoint_frequency > epochs:
        raise UserError(
            f"hyperparameter checkpoint_frequency={params.checkpoint_frequency} is larger than "
            f"epochs={epochs}; use a value between 1 and epochs"
        )


@dataclass(frozen=True)
class Hyperparameters(EngineHyperparameters):
    # --- model ---
    architecture: str = hp(
        "resnet", "str", "Network: ResNet or the dog-breed VGG16.",
        choices=CLASSIFICATION_ARCHITECTURES, aliases=("model",),
    )
    num_layers: int = hp(152, "int", "ResNet depth (built-in default 152).", choices=RESNET_DEPTHS)
    use_pretrained_model: bool = hp(
        False, "bool", "Start from ImageNet weights (`weights` channel or the TORCH_HOME cache)."
    )
    download_pretrained: bool = hp(
        False, "bool", "Allow downloading ImageNet weights when no local file is found."
    )
    finetune: str = hp(
        "auto", "str",
        "head: train only the new head; full: train every layer; auto: head for vgg16, "
        "full for resnet.",
        choices=FINETUNE_MODES,
    )
    num_classes: int | None = hp(
        None, "int", "Number of classes; checked against the data when given.", min=2
    )
    num_training_samples: int | None = hp(
        None, "int", "Number of training images (informational; a mismatch is logged).", min=1
    )
    multi_label: bool = hp(False, "bool", "Several labels per image (sigmoid + BCE).")
    use_weighted_loss: bool = hp(False, "bool", "Weight BCE by inverse label frequency.")
    # --- input ---
    image_shape: str = hp("3,224,224", "str", "Network input as 'channels,height,width'.")
    resize: int | None = hp(
        None, "int", "Shorter image side before cropping (default: the larger of H, W).", min=16
    )
    augmentation_type: str | None = hp(
        None, "str", "Training augmentation (default none).", choices=AUGMENTATIONS
    )
    # --- data formats (see train/data/readers.py) ---
    data_format: str = hp(
        "auto", "str",
        "How to read the image channels: auto (from ContentType, input mode and files), "
        "folder, lst (images + <channel>_lst), recordio (.rec), manifest (augmented manifest).",
        choices=DATA_FORMATS,
    )
    label_attribute: str | None = hp(
        None, "str", "Manifest label attribute (default: in File mode the one attribute that is "
        "neither source-ref nor metadata; in Pipe mode the second of attribute_names)."
    )
    attribute_names: str | None = attribute_names_hp()
    source_ref_prefix: str | None = hp(
        None, "str", "File-mode manifests: the S3 prefix the images channel was copied from "
        "(default: match the longest tail of each source-ref's bucket/key)."
    )
    pipe_wait_seconds: float = pipe_wait_seconds_hp()
    shuffle_buffer_size: int = shuffle_buffer_size_hp(1024, "training samples")
    # --- optimisation ---
    epochs: int = hp(30, "int", "Passes over the training data.", min=1)
    mini_batch_size: int = hp(32, "int", "Batch size.", min=1, aliases=("batch-size",))
    learning_rate: float = hp(0.1, "float", "Initial learning rate.", gt=0.0, max=10.0,
                              aliases=("lr",))
    optimizer: str = hp("sgd", "str", "Optimizer.", choices=OPTIMIZERS)
    momentum: float = hp(0.9, "float", "Momentum for sgd/nag/rmsprop.", min=0.0, max=1.0)
    weight_decay: float = hp(0.0001, "float", "L2 weight decay.", min=0.0, max=1.0)
    beta_1: float = hp(0.9, "float", "Adam beta1.", min=0.0, max=1.0)
    beta_2: float = hp(0.999, "float", "Adam beta2.", min=0.0, max=1.0)
    eps: float = hp(1e-8, "float", "Epsilon for adam and rmsprop.", gt=0.0, max=1.0)
    gamma: float = hp(0.9, "float", "RMSprop decay (alpha).", min=0.0, max=1.0)
    lr_scheduler_factor: float = hp(
        0.1, "float", "Multiply the learning rate by this at each lr_scheduler_step.",
        gt=0.0, max=1.0,
    )
    lr_scheduler_step: str | None = hp(
        None, "str", "Comma-separated epochs at which to decay the learning rate, e.g. '10,20'."
    )
    kv_store: str = hp("device", "str", "Accepted for compatibility: training is always "
                       "synchronous data parallel (DDP) over every instance's processes; "
                       "dist_async runs synchronously too.", choices=KV_STORES)
    # --- evaluation and stopping ---
    top_k: int | None = hp(None, "int", "Also report top-k accuracy.", min=2)
    early_stopping: bool = hp(False, "bool", "Stop when validation accuracy stops improving.")
    early_stopping_min_epochs: int = hp(10, "int", "Epochs before early stopping may act.", min=1)
    early_stopping_patience: int = hp(
        5, "int", "Epochs without improvement before stopping.", min=1
    )
    early_stopping_tolerance: float = hp(
        0.0, "float", "Relative accuracy improvement below which an epoch counts as none.",
        min=0.0, max=1.0,
    )
    # --- data quality ---
    max_bad_images: int = hp(
        10, "int", "Unreadable images skipped (with a warning) before the job fails.", min=0
    )

    # Derived values -----------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        return _parse_image_shape(self.image_shape)

    @property
    def lr_steps(self) -> list[int]:
        return parse_epoch_list(self.lr_scheduler_step) if self.lr_scheduler_step else []

    @property
    def freeze_backbone(self) -> bool:
        if self.finetune == "auto":
            return self.architecture == "vgg16"
        return self.finetune == "head"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(Hyperparameters)}
ALIASES = {alias: f.name for f in FIELDS.values() for alias in f.metadata.get("aliases", ())}


def parse(raw: Mapping[str, str]) -> Hyperparameters:
    """Turn ``hyperparameters.json`` (name → string) into validated, typed values."""
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for name, text in raw.items():
        if name in IGNORED_NAMES or name.startswith(IGNORED_PREFIXES):
            continue
        canonical = ALIASES.get(name, name)
        spec = FIELDS.get(canonical)
        if spec is None:
            raise UserError(_unknown_name_message(name))
        value = _convert(name, _unquote(text), spec)
        if canonical in values and values[canonical] != value:
            raise UserError(
                f"hyperparameters {spelled[canonical]!r}={values[canonical]!r} and {name!r}="
                f"{value!r} set the same thing to different values; keep one of them"
            )
        values[canonical] = value
        spelled[canonical] = name
    params = Hyperparameters(**values)
    _check_consistency(params)
    return params


def _unquote(text: str) -> str:
    # The SDK's script-mode estimators JSON-encode every value: '"0.01"', '"vgg16"'.
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError:
            return text
        return decoded if isinstance(decoded, str) else text
    return text


def _convert(name: str, text: str, spec: dataclasses.Field[Any]) -> Any:
    kind = spec.metadata["kind"]
    meta = spec.metadata
    try:
        if kind == "bool":
            value: Any = _parse_bool(text)
        elif kind == "int":
            as_float = float(text)
            if not as_float.is_integer():
                raise ValueError
            value = int(as_float)
        elif kind == "float":
            value = float(text)
            if value != value:  # NaN
                raise ValueError
        else:
            value = text
    except ValueError:
        raise UserError(
            f"hyperparameter {name}={text!r} is not a valid {kind}; {meta['doc']}"
        ) from None
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        shown = ", ".join(str(c) for c in choices)
        raise UserError(f"hyperparameter {name}={text!r} is not valid; choose one of: {shown}")
    if "min" in meta and value < meta["min"]:
        raise UserError(f"hyperparameter {name}={text!r} must be >= {meta['min']}")
    if "gt" in meta and value <= meta["gt"]:
        raise UserError(f"hyperparameter {name}={text!r} must be > {meta['gt']}")
    if "max" in meta and value > meta["max"]:
        raise UserError(f"hyperparameter {name}={text!r} must be <= {meta['max']}")
    return value


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError(text)


def _parse_image_shape(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise UserError(
            f"hyperparameter image_shape={text!r} must be 'channels,height,width', e.g. 3,224,224"
        )
    channels, height, width = parts
    if channels != 3:
        raise UserError(
            f"hyperparameter image_shape={text!r}: only 3 (RGB) channels are supported; "
            "grayscale images are converted to RGB automatically"
        )
    if height < 32 or width < 32:
        raise UserError(f"hyperparameter image_shape={text!r}: height and width must be >= 32")
    return channels, height, width


def parse_epoch_list(text: str) -> list[int]:
    """``lr_scheduler_step``: increasing positive epochs, e.g. ``10,20``."""
    try:
        steps = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        steps = []
    if not steps or any(s < 1 for s in steps) or steps != sorted(set(steps)):
        raise UserError(
            f"hyperparameter lr_scheduler_step={text!r} must be increasing positive epoch "
            "numbers separated by commas, e.g. 10,20"
        )
    return steps


def _check_consistency(params: Hyperparameters) -> None:
    params.input_shape  # noqa: B018 - validates image_shape
    params.lr_steps  # noqa: B018 - validates lr_scheduler_step
    check_engine_settings(params, params.epochs)
    if params.use_weighted_loss and not params.multi_label:
        raise UserError("hyperparameter use_weighted_loss=1 needs multi_label=1")


def _unknown_name_message(name: str) -> str:
    valid = sorted([*FIELDS, *ALIASES])
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown hyperparameter {name!r}.{hint} Valid names: {', '.join(valid)}"


def describe() -> list[dict[str, Any]]:
    """The schema as rows (name, default, rules, doc) for the README and `train --help`."""
    rows = []
    for f in FIELDS.values():
        rules = {k: v for k, v in f.metadata.items() if k in ("choices", "min", "max", "gt")}
        rows.append({
            "name": f.name,
            "aliases": list(f.metadata.get("aliases", ())),
            "default": f.default,
            "rules": rules,
            "doc": f.metadata["doc"],
        })
    return rows
