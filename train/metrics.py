"""Metric log lines and the regexes SageMaker reads them with (training jobs, tuning).

The lines follow the built-in image-classification algorithm (``Epoch[N] Train-accuracy=X``,
``Epoch[N] Validation-accuracy=X``) and the dog-breed script (``Test set: Average loss: X``).
Multi-label jobs add ``exact_match``, ``precision``, ``recall`` and ``f1`` lines (see
``train.engine.RunningStats`` for what each measures).
"""

from __future__ import annotations

import logging

from train.engine import RunningStats

# The regexes live in a torch-free module so the launchers can import them; re-exported here.
from train.metric_definitions import (
    METRIC_DEFINITIONS,
    MULTI_LABEL_METRIC_DEFINITIONS,
    MULTI_LABEL_METRICS,
    NUMBER,
)

log = logging.getLogger(__name__)

__all__ = ["METRIC_DEFINITIONS", "MULTI_LABEL_METRICS", "MULTI_LABEL_METRIC_DEFINITIONS",
           "NUMBER", "log_epoch", "log_test"]


def log_epoch(epoch: int, phase: str, stats: RunningStats, top_k: int | None) -> None:
    # Fixed-point formatting: the regexes above (and the seed's) do not accept exponents.
    log.info("Epoch[%d] %s-accuracy=%.6f", epoch, phase, stats.accuracy)
    log.info("Epoch[%d] %s-loss=%.6f", epoch, phase, stats.loss)
    if stats.multi_label:
        for name in MULTI_LABEL_METRICS:
            log.info("Epoch[%d] %s-%s=%.6f", epoch, phase, name, getattr(stats, name))
    elif top_k:
        log.info("Epoch[%d] %s-top_k_accuracy_%d=%.6f", epoch, phase, top_k, stats.topk_accuracy)


def log_test(stats: RunningStats) -> None:
    """The dog-breed script's summary line, matched by ``Test set: Average loss: ([0-9\\.]+)``."""
    right, total = ((stats.label_correct, stats.label_count) if stats.multi_label
                    else (stats.correct, stats.count))
    log.info(
        "Test set: Average loss: %.4f, Accuracy: %d/%d (%.0f%%)",
        stats.loss, right, total, 100.0 * stats.accuracy,
    )
