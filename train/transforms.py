"""Training-time augmentation presets, named after the built-in algorithm's augmentation_type.

The built-in algorithm (MXNet) describes:
- crop: random crop and horizontal flip;
- crop_color: also random hue/saturation/lightness shifts of up to 36/50/50 (on a 0–255 scale);
- crop_color_transform: also rotation up to 10 degrees, shear up to 0.1 and aspect-ratio
  changes up to 0.25.
These presets reproduce the same kinds and sizes of change with torchvision operations.
Without an augmentation type, training images get the evaluation transform.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torchvision.transforms import v2

from common.artifact import InputSpec
from common.preprocessing import eval_transform


def train_transform(spec: InputSpec, augmentation: str | None) -> Callable:
    if augmentation is None:
        return eval_transform(spec)
    size = (spec.height, spec.width)
    steps: list[Callable] = [v2.ToImage()]
    if augmentation == "crop_color_transform":
        shear_degrees = math.degrees(math.atan(0.1))
        steps.append(v2.RandomAffine(degrees=10, shear=shear_degrees))
        steps.append(v2.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.75, 1 / 0.75),
                                          antialias=True))
    else:
        steps.append(v2.Resize(spec.resize, antialias=True))
        steps.append(v2.RandomCrop(size, pad_if_needed=True))
    steps.append(v2.RandomHorizontalFlip())
    if augmentation in ("crop_color", "crop_color_transform"):
        # Hue ±36 degrees; saturation and lightness ±50 on a 0–255 scale.
        steps.append(v2.ColorJitter(brightness=50 / 255, saturation=50 / 255, hue=36 / 360))
    steps += [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(spec.mean), std=list(spec.std)),
    ]
    return v2.Compose(steps)
