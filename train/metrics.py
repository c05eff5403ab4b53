"""Metric log lines and the regexes SageMaker reads them with (training jobs, tuning).

The lines follow the built-in image-classification algorithm (``Epoch[N] Train-accuracy=X``,
``Epoch[N] Validation-accuracy=X``) and the dog-breed script (``Test set: Average loss: X``).
"""

from __future__ import annotations

import logging

from train.engine import RunningStats

log = logging.getLogger(__name__)

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


def log_epoch(epoch: int, phase: str, stats: RunningStats, top_k: int | None) -> None:
    # Fixed-point formatting: the regexes above (and the seed's) do not accept exponents.
    log.info("Epoch[%d] %s-accuracy=%.6f", epoch, phase, stats.accuracy)
    log.info("Epoch[%d] %s-loss=%.6f", epoch, phase, stats.loss)
    if top_k:
        log.info("Epoch[%d] %s-top_k_accuracy_%d=%.6f", epoch, phase, top_k, stats.topk_accuracy)


def log_test(stats: RunningStats) -> None:
    """The dog-breed script's summary line, matched by ``Test set: Average loss: ([0-9\\.]+)``."""
    log.info(
        "Test set: Average loss: %.4f, Accuracy: %d/%d (%.0f%%)",
        stats.loss, stats.correct, stats.count, 100.0 * stats.accuracy,
    )
