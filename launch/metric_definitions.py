"""The ``metric_definitions`` SageMaker reads from the training log, per task.

Classification regexes come from ``train.metric_definitions`` (torch-free), the module the
training log lines are written against.
"""

from __future__ import annotations

from train.metric_definitions import METRIC_DEFINITIONS as CLASSIFICATION
from train.metric_definitions import MULTI_LABEL_METRIC_DEFINITIONS as MULTI_LABEL

SEGMENTATION = [
    {"Name": "validation:mIOU", "Regex": r"validation:mIOU=([0-9\.]+)"},
    {"Name": "validation:pixel_accuracy", "Regex": r"validation:pixel_accuracy=([0-9\.]+)"},
]

TASKS = ("classification", "segmentation")
# What a tuning job optimises when not told: the seed's objective, or mIOU for segmentation.
DEFAULT_OBJECTIVE = {
    "classification": ("average test loss", "Minimize"),
    "segmentation": ("validation:mIOU", "Maximize"),
}


def for_task(task: str, *, multi_label: bool = False) -> list[dict[str, str]]:
    if task == "segmentation":
        return [dict(d) for d in SEGMENTATION]
    extra = MULTI_LABEL if multi_label else []
    return [dict(d) for d in CLASSIFICATION + extra]
