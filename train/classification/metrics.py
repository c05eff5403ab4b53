"""Classification's meter and metric lines.

The lines follow the built-in image-classification algorithm (``Epoch[N] Train-accuracy=X``,
``Epoch[N] Validation-accuracy=X``) and the dog-breed script (``Test set: Average loss: X``);
their regexes are ``train.metric_definitions`` (torch-free, for the launchers). Multi-label jobs
add ``exact_match``, ``precision``, ``recall`` and ``f1`` lines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch

from train.metric_definitions import MULTI_LABEL_METRICS
from train.task import Meter, metrics_log


@dataclass
class RunningStats(Meter):
    """Sums over the samples seen so far (of an epoch, or an evaluation).

    Single-label: ``accuracy`` is top-1 accuracy. Multi-label (sigmoid outputs thresholded at
    0.5): ``accuracy`` is the mean over classes of per-class accuracy, as the built-in algorithm
    logs it; ``exact_match`` (every class right), and micro-averaged ``precision``, ``recall``
    and ``f1`` over all (sample, class) pairs are logged beside it.
    """

    loss_sum: float = 0.0
    correct: int = 0
    topk_correct: int = 0
    count: int = 0
    batches: int = 0
    label_correct: int = 0  # multi-label: (sample, class) pairs predicted right
    label_count: int = 0
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    multi_label: bool = False

    def update(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
               top_k: int | None) -> None:
        n = targets.shape[0]
        self.loss_sum += float(loss) * n
        self.count += n
        self.batches += 1
        if self.multi_label:
            predicted = logits > 0  # sigmoid(logit) > 0.5
            actual = targets > 0.5
            right = predicted == actual
            self.correct += int(right.all(dim=1).sum())
            self.label_correct += int(right.sum())
            self.label_count += right.numel()
            self.true_positives += int((predicted & actual).sum())
            self.false_positives += int((predicted & ~actual).sum())
            self.false_negatives += int((~predicted & actual).sum())
            return
        self.correct += int((logits.argmax(dim=1) == targets).sum())
        if top_k:
            k = min(top_k, logits.shape[1])
            topk = logits.topk(k, dim=1).indices
            self.topk_correct += int((topk == targets[:, None]).any(dim=1).sum())

    # Meter ------------------------------------------------------------------------------
    def _sum_fields(self) -> list[str]:
        return [f.name for f in fields(self) if f.name != "multi_label"]

    def sums(self) -> torch.Tensor:
        return torch.tensor([float(getattr(self, name)) for name in self._sum_fields()],
                            dtype=torch.float64)

    def set_sums(self, sums: torch.Tensor) -> None:
        for name, value in zip(self._sum_fields(), sums.tolist(), strict=True):
            setattr(self, name, value if name == "loss_sum" else round(value))

    @property
    def score(self) -> float:
        return self.accuracy

    def progress(self) -> str:
        return f"\taccuracy={self.accuracy:.6f}"

    # Metrics ----------------------------------------------------------------------------
    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def accuracy(self) -> float:
        if self.multi_label:
            return self.label_correct / max(self.label_count, 1)
        return self.correct / max(self.count, 1)

    @property
    def exact_match(self) -> float:
        return self.correct / max(self.count, 1)

    @property
    def precision(self) -> float:
        return self.true_positives / max(self.true_positives + self.false_positives, 1)

    @property
    def recall(self) -> float:
        return self.true_positives / max(self.true_positives + self.false_negatives, 1)

    @property
    def f1(self) -> float:
        denominator = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / max(denominator, 1)

    @property
    def topk_accuracy(self) -> float:
        return self.topk_correct / max(self.count, 1)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def log_epoch(epoch: int, phase: str, stats: RunningStats, top_k: int | None
              ) -> dict[str, float]:
    """The epoch's lines for ``phase`` (Train, Validation); returns them by metric name."""
    # Fixed-point formatting: the regexes (and the seed's) do not accept exponents.
    values = {"accuracy": stats.accuracy, "loss": stats.loss}
    if stats.multi_label:
        values |= {name: getattr(stats, name) for name in MULTI_LABEL_METRICS}
    elif top_k:
        values[f"top_k_accuracy_{top_k}"] = stats.topk_accuracy
    for name, value in values.items():
        metrics_log.info("Epoch[%d] %s-%s=%.6f", epoch, phase, name, value)
    return {f"{phase.lower()}:{name}": value for name, value in values.items()}


def log_test(stats: RunningStats) -> None:
    """The dog-breed script's summary line, matched by ``Test set: Average loss: ([0-9\\.]+)``."""
    right, total = ((stats.label_correct, stats.label_count) if stats.multi_label
                    else (stats.correct, stats.count))
    metrics_log.info(
        "Test set: Average loss: %.4f, Accuracy: %d/%d (%.0f%%)",
        stats.loss, right, total, 100.0 * stats.accuracy,
    )
