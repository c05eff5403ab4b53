"""The regexes SageMaker reads classification metrics with (``metric_definitions``).

``train.classification.metrics`` writes the lines: the built-in algorithm's
``Epoch[N] Train-accuracy=X`` / ``Epoch[N] Validation-accuracy=X`` and the dog-breed script's
``Test set: Average loss: X``.
No torch here: the launchers import this module to fill in their estimators.
"""

from __future__ import annotations

NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
METRIC_DEFINITIONS = [
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


MULTI_LABEL_METRICS = ("exact_match", "precision", "recall", "f1")
# Logged only by multi-label jobs; add them to the estimator's metric_definitions for those.
MULTI_LABEL_METRIC_DEFINITIONS = [
    {"Name": f"validation:{name}", "Regex": rf"Epoch\[\d+\] Validation-{name}={NUMBER}"}
    for name in MULTI_LABEL_METRICS
]
