"""Optimizers, the step learning-rate schedule and early stopping, as the built-in defines them."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from train.hyperparameters import Hyperparameters


def make_optimizer(
    name: str,
    parameters: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    rmsprop_alpha: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.Optimizer:
    """The built-in algorithms' optimizers over the trainable ``parameters``.

    ``nag`` is SGD with Nesterov momentum; ``rmsprop_alpha`` is the decay of the squared-gradient
    average (the built-ins' ``gamma``/``gamma1``).
    """
    trainable = [p for p in parameters if p.requires_grad]
    if name in ("sgd", "nag"):
        return torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=name == "nag" and momentum > 0)
    if name == "adam":
        return torch.optim.Adam(trainable, lr=lr, betas=betas, eps=eps,
                                weight_decay=weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(trainable, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(trainable, lr=lr, alpha=rmsprop_alpha, eps=eps,
                                   momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def build_optimizer(params: Hyperparameters, parameters: Iterable[torch.nn.Parameter]
                    ) -> torch.optim.Optimizer:
    return make_optimizer(params.optimizer, parameters, lr=params.learning_rate,
                          weight_decay=params.weight_decay, momentum=params.momentum,
                          rmsprop_alpha=params.gamma, betas=(params.beta_1, params.beta_2),
                          eps=params.eps)


def build_scheduler(params: Hyperparameters, optimizer: torch.optim.Optimizer
                    ) -> torch.optim.lr_scheduler.LRScheduler:
    """Multiply the learning rate by lr_scheduler_factor at each epoch in lr_scheduler_step."""
    return torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=params.lr_steps, gamma=params.lr_scheduler_factor
    )


class EarlyStopping:
    """The built-in rule: after ``min_epochs``, stop once ``patience`` epochs in a row improved
    validation accuracy by a relative amount no larger than ``tolerance``."""

    def __init__(self, *, min_epochs: int, patience: int, tolerance: float) -> None:
        self.min_epochs = min_epochs
        self.patience = patience
        self.tolerance = tolerance
        self.best: float | None = None
        self.epochs_without_improvement = 0

    def update(self, epochs_done: int, accuracy: float) -> bool:
        """Record one epoch's validation accuracy; True means stop now."""
        if self.best is None or (accuracy > self.best and (
            self.best == 0 or (accuracy - self.best) / self.best > self.tolerance
        )):
            self.best = accuracy
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        return epochs_done >= self.min_epochs and self.epochs_without_improvement >= self.patience

    def state_dict(self) -> dict[str, float | int | None]:
        return {"best": self.best, "epochs_without_improvement": self.epochs_without_improvement}

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        self.best = state["best"]  # type: ignore[assignment]
        self.epochs_without_improvement = int(state["epochs_without_improvement"] or 0)
