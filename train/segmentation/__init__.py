"""Semantic segmentation (the built-in algorithm's contract): ``run(env, stop)`` and the rule
that picks it (``is_segmentation_job``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from train.contract import TrainingEnv

ANNOTATION_CHANNEL = "train_annotation"
SELECTING_HYPERPARAMETERS = ("algorithm", "backbone")


def is_segmentation_job(env: TrainingEnv) -> bool:
    """True when the hyperparameters name ``algorithm`` or ``backbone``, a ``train_annotation``
    channel is configured or present, or a channel's ``AttributeNames`` end in a ``-ref`` label
    (a PNG mask: Ground Truth semantic segmentation)."""
    from train.segmentation.manifest import has_ref_labels

    if any(name in env.hyperparameters for name in SELECTING_HYPERPARAMETERS):
        return True
    if any(has_ref_labels(config.attribute_names) for config in env.channels.values()):
        return True
    return ANNOTATION_CHANNEL in env.available_channels()


def run(env: TrainingEnv, stop: Any) -> dict[str, float]:
    from train.segmentation.job import run as run_segmentation

    return run_segmentation(env, stop)
