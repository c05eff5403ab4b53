"""Semantic segmentation (the built-in algorithm's contract): the task
(``train.segmentation.task``), the rule that picks it (``is_segmentation_job``) and ``run``, a
one-process job in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from train.contract import TrainingEnv

ANNOTATION_CHANNEL = "train_annotation"


def is_segmentation_job(env: TrainingEnv) -> bool:
    """True when a hyperparameter only semantic segmentation has is set (``algorithm``,
    ``backbone``, ``crop_size``, ...), a ``train_annotation`` channel is configured or present,
    the attribute names (the hyperparameter ``attribute_names``, or a channel's
    ``AttributeNames`` written by our tools) end in a ``-ref`` label (a PNG mask), or a
    File-mode ``train`` manifest's label attribute is such a reference."""
    from train.data.pipe import parse_attribute_names
    from train.hyperparameters import _unquote
    from train.segmentation.hyperparameters import SEGMENTATION_ONLY
    from train.segmentation.manifest import has_ref_labels, manifest_has_ref_labels

    if SEGMENTATION_ONLY.intersection(env.hyperparameters):
        return True
    names = env.hyperparameters.get("attribute_names")
    if names and has_ref_labels(parse_attribute_names(_unquote(names))):
        return True
    if any(has_ref_labels(config.attribute_names) for config in env.channels.values()):
        return True
    if ANNOTATION_CHANNEL in env.available_channels():
        return True
    return "train" in env.available_channels() and manifest_has_ref_labels(env, "train")


def run(env: TrainingEnv, stop: Any) -> dict[str, float]:
    from train import engine
    from train.distributed.runtime import single_process
    from train.segmentation.task import SegmentationTask

    task = SegmentationTask(env, SegmentationTask.parse(env.hyperparameters))
    return engine.run(env, stop, task, single_process())
