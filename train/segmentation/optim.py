"""Optimizers and per-iteration learning-rate schedules of the built-in segmentation algorithm.

poly: ``lr * (1 - it / total) ** 0.9``; cosine: ``lr * (1 + cos(pi * it / total)) / 2``;
step: ``lr * factor ** (number of lr_scheduler_step epochs already passed)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from train.segmentation.hyperparameters import SegmentationHyperparameters

POLY_POWER = 0.9


def build_optimizer(params: SegmentationHyperparameters,
                    parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    trainable = [p for p in parameters if p.requires_grad]
    lr, wd = params.learning_rate, params.weight_decay
    if params.optimizer in ("sgd", "nag"):
        return torch.optim.SGD(trainable, lr=lr, momentum=params.momentum, weight_decay=wd,
                               nesterov=params.optimizer == "nag" and params.momentum > 0)
    if params.optimizer == "adam":
        return torch.optim.Adam(trainable, lr=lr, weight_decay=wd)
    if params.optimizer == "adagrad":
        return torch.optim.Adagrad(trainable, lr=lr, weight_decay=wd)
    return torch.optim.RMSprop(trainable, lr=lr, alpha=params.gamma1, momentum=params.momentum,
                               weight_decay=wd)


def build_scheduler(params: SegmentationHyperparameters, optimizer: torch.optim.Optimizer,
                    iterations_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per batch."""
    total = max(1, params.epochs * iterations_per_epoch)
    steps = [s * iterations_per_epoch for s in params.lr_steps]

    def factor(iteration: int) -> float:
        progress = min(iteration, total) / total
        if params.lr_scheduler == "poly":
            return (1.0 - progress) ** POLY_POWER
        if params.lr_scheduler == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return params.lr_scheduler_factor ** sum(iteration >= s for s in steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
