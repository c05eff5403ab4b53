"""Optimizers and per-iteration learning-rate schedules of the built-in segmentation algorithm.

poly: ``lr * (1 - it / total) ** 0.9``; cosine: ``lr * (1 + cos(pi * it / total)) / 2``;
step: ``lr * factor ** (number of lr_scheduler_step epochs already passed)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from train.optim import make_optimizer
from train.segmentation.hyperparameters import SegmentationHyperparameters

POLY_POWER = 0.9


def build_optimizer(params: SegmentationHyperparameters,
                    parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    # RMSprop's eps stays torch's default (1e-8 as in classification); gamma1 is its decay.
    return make_optimizer(params.optimizer, parameters, lr=params.learning_rate,
                          weight_decay=params.weight_decay, momentum=params.momentum,
                          rmsprop_alpha=params.gamma1)


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
