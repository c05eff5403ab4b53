"""The ``metric_definitions`` SageMaker reads from the training log, per task.

Classification lines are written by ``train.metrics`` (the built-in algorithm's ``Epoch[N]``
lines and the dog-breed script's ``Test set:`` line). The list is repeated here, not imported,
because ``train.metrics`` imports torch and the launchers must not; a test keeps the two equal.
"""

from __future__ import annotations

NUMBER = r"([0-9]+(?:\.[0-9]+)?)"

CLASSIFICATION = [
    {"Name": "train:accuracy", "Regex": rf"Epoch\[\d+\] Train-accuracy={NUMBER}"},
    {"Name": "train:loss", "Regex": rf"Epoch\[\d+\] Train-loss={NUMBER}"},
    {"Name": "validation:accuracy", "Regex": rf"Epoch\[\d+\] Validation-accuracy={NUMBER}"},
    {"Name": "validation:loss", "Regex": rf"Epoch\[\d+\] Validation-loss={NUMBER}"},
    {"Name": "validation:top_k_accuracy",
     "Regex": rf"Epoch\[\d+\] Validation-top_k_accuracy_\d+={NUMBER}"},
    {"Name": "average test loss", "Regex": r"Test set: Average loss: ([0-9\.]+)"},
    {"Name": "test:accuracy", "Regex": r"Test set: Average loss: [0-9\.]+, Accuracy: "
                                      r"\d+/\d+ \(([0-9\.]+)%\)"},
]
# Multi-label classification jobs (multi_label=1) log these too.
MULTI_LABEL = [
    {"Name": f"validation:{name}", "Regex": rf"Epoch\[\d+\] Validation-{name}={NUMBER}"}
    for name in ("exact_match", "precision", "recall", "f1")
]
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
