"""mIOU and pixel accuracy from a confusion matrix, and their log lines.

Lines per epoch (fixed-point, so the regexes below match):
``#quality_metric: host=algo-1, epoch=N, validation mIOU <score>=X`` (the built-in's style) and
``Epoch[N] validation:mIOU=X`` / ``validation:pixel_accuracy=X`` / ``train:loss=X``.
"""

from __future__ import annotations

import torch

from train.task import Meter, metrics_log

IGNORE_INDEX = 255
METRIC_DEFINITIONS = [
    {"Name": "validation:mIOU", "Regex": r"validation:mIOU=([0-9\.]+)"},
    {"Name": "validation:pixel_accuracy", "Regex": r"validation:pixel_accuracy=([0-9\.]+)"},
    {"Name": "train:loss", "Regex": r"train:loss=([0-9\.]+)"},
]


class LossMeter(Meter):
    """The training loss summed over samples."""

    def __init__(self) -> None:
        self.loss_sum = 0.0
        self.count = 0

    def add(self, loss: float, count: int) -> None:
        self.loss_sum += loss * count
        self.count += count

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    def sums(self) -> torch.Tensor:
        return torch.tensor([self.loss_sum, float(self.count)], dtype=torch.float64)

    def set_sums(self, sums: torch.Tensor) -> None:
        self.loss_sum, self.count = float(sums[0]), round(float(sums[1]))


class ConfusionMatrix(Meter):
    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def sums(self) -> torch.Tensor:
        return self.matrix.flatten().to(torch.float64)

    def set_sums(self, sums: torch.Tensor) -> None:
        self.matrix = sums.round().to(torch.int64).view(self.num_classes, self.num_classes)

    @property
    def score(self) -> float:
        return self.mean_iou

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        valid = target != IGNORE_INDEX
        index = target[valid].cpu() * self.num_classes + prediction[valid].cpu()
        self.matrix += torch.bincount(index, minlength=self.num_classes ** 2).view(
            self.num_classes, self.num_classes)

    @property
    def pixel_accuracy(self) -> float:
        total = int(self.matrix.sum())
        return float(self.matrix.diag().sum()) / total if total else 0.0

    @property
    def iou(self) -> torch.Tensor:
        """Per-class IOU; NaN for classes absent from both labels and predictions."""
        m = self.matrix.double()
        union = m.sum(0) + m.sum(1) - m.diag()
        return m.diag() / union

    @property
    def mean_iou(self) -> float:
        value = float(torch.nanmean(self.iou))
        return 0.0 if value != value else value


def log_epoch(epoch: int, host: str, train_loss: float, cm: ConfusionMatrix | None
              ) -> dict[str, float]:
    """The epoch's lines; returns the metrics by name."""
    metrics_log.info("Epoch[%d] train:loss=%.6f", epoch, train_loss)
    if cm is None:
        return {"train:loss": train_loss}
    metrics_log.info("#quality_metric: host=%s, epoch=%d, validation mIOU <score>=%.6f", host,
                     epoch, cm.mean_iou)
    metrics_log.info("#quality_metric: host=%s, epoch=%d, validation pixel_accuracy "
                     "<score>=%.6f", host, epoch, cm.pixel_accuracy)
    metrics_log.info("Epoch[%d] validation:mIOU=%.6f", epoch, cm.mean_iou)
    metrics_log.info("Epoch[%d] validation:pixel_accuracy=%.6f", epoch, cm.pixel_accuracy)
    return {"train:loss": train_loss, "validation:mIOU": cm.mean_iou,
            "validation:pixel_accuracy": cm.pixel_accuracy}
