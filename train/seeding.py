"""The seed of a training job, shared by classification and segmentation."""

from __future__ import annotations

import os
from typing import Any

import torch


def choose_seed(requested: int | None, resume: dict[str, Any] | None) -> int:
    """The job's seed. A requested seed also makes kernels deterministic (without one, cuDNN
    may autotune); a resumed job keeps the seed it started with, so that it sees the same data
    order and augmentations as before."""
    deterministic = requested is not None
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic
    if resume is not None:
        return int(resume["seed"])
    if requested is not None:
        return requested
    return int.from_bytes(os.urandom(4), "little") % 2**31
