"""The tasks the ``train`` command knows, and which one a job is.

A new task (e.g. object detection) is a package with a ``train.task.Task`` subclass and one
entry here: how to recognise its jobs. Classification is what a job is when no other task
claims it (the built-in image-classification algorithm's contract).
"""

from __future__ import annotations

from collections.abc import Callable

from train.contract import TrainingEnv
from train.task import Task


def _segmentation(env: TrainingEnv) -> type[Task] | None:
    from train.segmentation import is_segmentation_job

    if not is_segmentation_job(env):
        return None
    from train.segmentation.task import SegmentationTask

    return SegmentationTask


# Tried in order; each returns its Task class when the job is one of its kind.
RECOGNISERS: tuple[Callable[[TrainingEnv], type[Task] | None], ...] = (_segmentation,)


def task_class(env: TrainingEnv) -> type[Task]:
    for recognise in RECOGNISERS:
        found = recognise(env)
        if found is not None:
            return found
    from train.classification.task import ClassificationTask

    return ClassificationTask


def create(env: TrainingEnv) -> Task:
    """The job's task, its hyperparameters parsed (a bad one is a UserError here)."""
    cls = task_class(env)
    return cls(env, cls.parse(env.hyperparameters))
