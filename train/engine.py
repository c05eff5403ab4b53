"""One epoch of training and one pass of evaluation; nothing here knows about SageMaker."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from train.data.dataset import Batch

log = logging.getLogger(__name__)

LOG_EVERY_BATCHES = 20


@dataclass
class RunningStats:
    """Sums over the samples seen so far in an epoch (saved in mid-epoch checkpoints).

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
    multi_label: bool = False
    label_correct: int = 0  # multi-label: (sample, class) pairs predicted right
    label_count: int = 0
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

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


@dataclass(frozen=True)
class Precision:
    """Autocast settings: mixed precision only on CUDA."""

    device: torch.device
    dtype: torch.dtype | None  # None: plain float32

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16


def train_one_epoch(
    *,
    model: nn.Module,
    batches: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    precision: Precision,
    scaler: torch.amp.GradScaler | None,
    stats: RunningStats,
    epoch: int,
    top_k: int | None,
    channels_last: bool,
    on_bad: Callable[[list[str]], None],
    should_stop: Callable[[], bool],
    after_batch: Callable[[RunningStats], None] | None = None,
) -> bool:
    """Train over ``batches``, accumulating into ``stats``. Returns False if stopped early."""
    model.train()
    device = precision.device
    tick = time.perf_counter()
    seen_since_tick = 0
    for batch in batches:
        on_bad(batch.bad_names)
        if batch.size:
            images = batch.images.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            targets = batch.targets.to(device, non_blocking=True)
            with precision.autocast():
                logits = model(images)
                loss = criterion(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            stats.update(loss.detach(), logits.detach().float(), targets, top_k)
            seen_since_tick += batch.size
        else:
            stats.batches += 1
        if after_batch is not None:
            after_batch(stats)
        if stats.batches % LOG_EVERY_BATCHES == 0:
            now = time.perf_counter()
            speed = seen_since_tick / max(now - tick, 1e-9)
            log.info("Epoch[%d] Batch [%d]\tSpeed: %.2f samples/sec\taccuracy=%.6f",
                     epoch, stats.batches, speed, stats.accuracy)
            tick, seen_since_tick = now, 0
        if should_stop():
            return False
    return True


@torch.no_grad()
def evaluate(
    *,
    model: nn.Module,
    batches: Iterable[Batch],
    criterion: nn.Module,
    precision: Precision,
    top_k: int | None,
    channels_last: bool,
    on_bad: Callable[[list[str]], None],
    multi_label: bool = False,
) -> RunningStats:
    model.eval()
    stats = RunningStats(multi_label=multi_label)
    for batch in batches:
        on_bad(batch.bad_names)
        if not batch.size:
            continue
        images = batch.images.to(precision.device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = batch.targets.to(precision.device, non_blocking=True)
        with precision.autocast():
            logits = model(images)
            loss = criterion(logits, targets)
        stats.update(loss, logits.float(), targets, top_k)
    return stats
