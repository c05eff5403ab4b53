"""The ``metric_definitions`` SageMaker reads from the training log, per task.

Classification regexes come from ``train.metric_definitions`` (torch-free), the module the
training log lines are written against. Segmentation's are a copy of
``train.segmentation.metrics.METRIC_DEFINITIONS`` (that module imports torch); a test keeps
the two equal.
"""

from __future__ import annotations

from train.metric_definitions import METRIC_DEFINITIONS as CLASSIFICATION
from train.metric_definitions import MULTI_LABEL_METRIC_DEFINITIONS as MULTI_LABEL

SEGMENTATION = [
    {"Name": "validation:mIOU", "Regex": r"validation:mIOU=([0-9\.]+)"},
    {"Name": "validation:pixel_accuracy", "Regex": r"validation:pixel_accuracy=([0-9\.]+)"},
    {"Name": "train:loss", "Regex": r"train:loss=([0-9\.]+)"},
]

TASKS = ("classification", "segmentation")
# What a tuning job optimises when not told: the seed's objective, or mIOU for segmentation.
DEFAULT_OBJECTIVE = {
    "classification": ("average test loss", "Minimize"),
    "segmentation": ("validation:mIOU", "Maximize"),
}
# ... and on SageMaker's built-in algorithm images, which log their own metrics.
BUILT_IN_OBJECTIVE = {
    "classification": ("validation:accuracy", "Maximize"),
    "segmentation": ("validation:mIOU", "Maximize"),
}


def for_task(task: str, *, multi_label: bool = False) -> list[dict[str, str]]:
    if task == "segmentation":
        return [dict(d) for d in SEGMENTATION]
    extra = MULTI_LABEL if multi_label else []
    return [dict(d) for d in CLASSIFICATION + extra]


def merge(defaults: list[dict[str, str]], extra: list[tuple[str, str]]) -> list[dict[str, str]]:
    """``defaults`` plus ``extra`` (name, regex); a name already there gets the new regex in
    place, so no metric is sent twice (SageMaker would reject or double-count it)."""
    merged = {d["Name"]: d["Regex"] for d in defaults}
    for name, regex in extra:
        merged[name] = regex
    return [{"Name": name, "Regex": regex} for name, regex in merged.items()]
