"""What a task (classification, segmentation, ...) supplies to the training engine.

The engine (``train.engine``) owns everything a training job does the same way whatever it
learns: the epoch loop, checkpoints and exact resume, SIGTERM, early stopping and best-epoch
export, the Debugger hook and the profiler, mixed precision and channels-last, and
distribution. A task supplies only what is its own: its data, its model, its loss, an
evaluation whose ``score`` picks the best epoch, its metric lines and its artifact metadata.
A new task is one new package with a ``Task`` subclass, registered in ``train.tasks``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from common.artifact import Metadata
from train.contract import INPUT_MODE_PIPE, TrainingEnv
from train.data.loading import Split
from train.distributed.runtime import Dist
from train.hyperparameters import EngineHyperparameters
from train.precision import Precision
from train.previous_model import PreviousModel

# Metric lines (epoch metrics, the test line) go through this logger: a distributed job mutes it
# on every rank but 0, so each line is logged once, with values over all ranks.
metrics_log = logging.getLogger("train.metrics")


class Meter(ABC):
    """Sums over samples (losses, counts, a confusion matrix): ranks add theirs up."""

    @abstractmethod
    def sums(self) -> torch.Tensor:
        """Every sum as one 1-D float64 tensor."""

    @abstractmethod
    def set_sums(self, sums: torch.Tensor) -> None:
        """Take the sums over all ranks (the engine all-reduces ``sums()``)."""

    @property
    def score(self) -> float:
        """Higher is better; picks the best epoch and drives early stopping."""
        raise NotImplementedError

    def progress(self) -> str:
        """Appended to the every-20-batches speed line (e.g. the running accuracy)."""
        return ""

    def reduced(self, dist: Dist) -> Meter:
        self.set_sums(dist.sum(self.sums()))
        return self


@dataclass
class TaskData:
    train: Split
    validation: Split | None = None
    test: Split | None = None
    # Training samples per epoch (all ranks together): counted, or declared for a stream.
    train_samples: int | None = None


@dataclass(frozen=True)
class DataContext:
    env: TrainingEnv
    seed: int
    dist: Dist

    def shard(self, channel: str) -> tuple[int, int]:
        """(index, count): this rank's share of ``channel``, by its S3DistributionType. A
        Pipe channel on a host of several processes is read whole by the host's first
        process, which deals the samples out (``train.distributed.stream_share``)."""
        name = channel.split("/")[0]
        if self.dist.local_world > 1 and self.env.input_mode(name) == INPUT_MODE_PIPE:
            return 0, 1
        return self.dist.shard(self.env.channel_distribution(name))


@dataclass(frozen=True)
class Finish:
    """What the engine knows once training ends, for the task's final metrics."""

    evaluate: Callable[[Split], Meter]
    last_metrics: dict[str, float]
    best_epoch: int | None
    best_metrics: dict[str, float]


class Task(ABC):
    name: ClassVar[str]  # the artifact's task (common.artifact.TASK_*)
    score_name: ClassVar[str]  # what Meter.score is, in logs
    #: Batches smaller than this train no step (BatchNorm cannot train on one image).
    min_batch: ClassVar[int] = 1

    def __init__(self, env: TrainingEnv, params: EngineHyperparameters) -> None:
        self.env = env
        self.params = params

    @staticmethod
    @abstractmethod
    def parse(raw: dict[str, str]) -> EngineHyperparameters: ...

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Settings that change what a checkpoint means (resuming across them is refused)."""

    @abstractmethod
    def load_data(self, ctx: DataContext) -> TaskData: ...

    @abstractmethod
    def check_previous(self, previous: PreviousModel) -> None:
        """Refuse a previous model (incremental training) whose network differs."""

    @abstractmethod
    def build_model(self, *, imagenet: bool) -> nn.Module:
        """The network; ``imagenet``: start from ImageNet weights if the task asks for them."""

    @property
    @abstractmethod
    def criterion(self) -> nn.Module:
        """The loss module (the Debugger hook records its output)."""

    @abstractmethod
    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer: ...

    @abstractmethod
    def scheduler(self, optimizer: torch.optim.Optimizer, batches_per_epoch: int
                  ) -> tuple[torch.optim.lr_scheduler.LRScheduler, bool]:
        """The learning-rate schedule and whether it steps every batch (else every epoch)."""

    @abstractmethod
    def new_meter(self) -> Meter:
        """An empty training meter."""

    def batch_size(self, batch: Any) -> int:
        """The samples a step trains on."""
        return len(batch[0])

    def samples_read(self, batch: Any) -> int:
        """The samples of the epoch's order a batch used up (resume counts these)."""
        return self.batch_size(batch)

    def observe(self, batch: Any) -> None:  # noqa: B027 - optional hook
        """Called for every training batch before its step (e.g. count bad images)."""

    @abstractmethod
    def train_step(self, model: nn.Module, batch: Any, meter: Meter, precision: Precision
                   ) -> torch.Tensor:
        """The loss of one batch (the engine runs it under autocast, then backward/step);
        ``precision.images`` moves images to the device in the right memory format."""

    @abstractmethod
    def evaluate(self, model: nn.Module, batches: Iterable[Any], precision: Precision) -> Meter:
        """A meter over ``batches`` (the engine runs it in inference mode, under autocast)."""

    @property
    def eval_batch_size(self) -> int:
        return self.params.mini_batch_size

    def end_epoch(self, epoch: int, samples: int, dist: Dist) -> None:  # noqa: B027
        """After an epoch's training steps (``samples``: all ranks together); optional."""

    @abstractmethod
    def log_epoch(self, epoch: int, train: Meter, validation: Meter | None) -> dict[str, float]:
        """Log the epoch's metric lines; return them by name (the artifact keeps the last)."""

    @abstractmethod
    def final_metrics(self, finish: Finish) -> dict[str, float]:
        """The artifact's metrics, once the best weights are back in the model."""

    @abstractmethod
    def metadata(self, metrics: dict[str, float]) -> Metadata: ...

    def state_dict(self) -> dict[str, Any]:
        """The task's own progress, kept in checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what ``state_dict`` returned."""
