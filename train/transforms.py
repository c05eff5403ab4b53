"""Training-time augmentation presets, named after the built-in algorithm's augmentation_type.

The built-in algorithm (MXNet) describes:
- crop: random crop and horizontal flip;
- crop_color: also random hue/saturation/lightness shifts of up to 36/50/50 (on a 0–255 scale);
- crop_color_transform: also rotation up to 10 degrees, shear up to 0.1 and aspect-ratio
  changes up to 0.25.
These presets reproduce the same kinds and sizes of change with torchvision operations.
Without an augmentation type, training images get the evaluation geometry (resize the shorter
side, centre crop).

Every preset turns image bytes into a ``uint8`` (3, H, W) tensor: the loader carries a quarter
of the bytes float32 would, and ``Batch.model_input`` converts and normalizes whole batches on
the training device (bench/results/data_peers.md has the measurements behind each choice).
Validation decodes and resizes exactly as the model server does, so that
``Batch.model_input(validation batch)`` equals ``common.preprocessing.eval_transform`` bit for
bit; training images may be decoded at a reduced JPEG scale (``train.data.decode``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torchvision.transforms import v2

from common.artifact import InputSpec
from train.data.decode import decode_rgb, pil_rgb

# crop_color_transform's RandomResizedCrop keeps at least this share of the image, at an aspect
# ratio of at least 3/4: its crop's sides are at least sqrt(0.6 * 0.75) of the image's.
_MIN_CROP_SIDE = math.sqrt(0.6 * 0.75)


class ImagePreset:
    """Image bytes → ``uint8`` (3, H, W): decode, then ``steps`` (torchvision v2 operations).

    ``min_short_side`` lets the decoder scale a large JPEG down while decoding, to no less than
    that shorter side; ``exact=True`` decodes with Pillow at full size, as the server does.
    ``mean``/``std`` (0–1 scale) are applied later, on the device, to whole batches.
    """

    def __init__(self, steps: Callable[[torch.Tensor], torch.Tensor], *, spec: InputSpec,
                 min_short_side: int | None, exact: bool = False) -> None:
        self.steps = steps
        self.min_short_side = min_short_side
        self.exact = exact
        self.mean = tuple(spec.mean)
        self.std = tuple(spec.std)

    def __call__(self, data: bytes) -> torch.Tensor:
        pixels = pil_rgb(data) if self.exact else decode_rgb(data, self.min_short_side)
        return self.steps(_chw(pixels))


def _chw(pixels: np.ndarray) -> torch.Tensor:
    # A (3, H, W) view of the (H, W, 3) array: no copy, and torch's uint8 antialiased resize
    # has its fast path for exactly this (channels-last) layout.
    return torch.from_numpy(pixels).permute(2, 0, 1)


def _eval_geometry(spec: InputSpec) -> list[Callable]:
    # common.preprocessing.eval_transform's steps before ToDtype/Normalize (a test checks that
    # the two stay equal).
    return [v2.Resize(spec.resize, antialias=True), v2.CenterCrop((spec.height, spec.width))]


def validation_transform(spec: InputSpec) -> ImagePreset:
    """The server's preprocessing in ``uint8``: validation scores what serving will see."""
    return ImagePreset(v2.Compose(_eval_geometry(spec)), spec=spec, min_short_side=None,
                       exact=True)


def train_transform(spec: InputSpec, augmentation: str | None) -> ImagePreset:
    if augmentation is None:
        return ImagePreset(v2.Compose(_eval_geometry(spec)), spec=spec,
                           min_short_side=spec.resize)
    size = (spec.height, spec.width)
    steps: list[Callable] = []
    if augmentation == "crop_color_transform":
        shear_degrees = math.degrees(math.atan(0.1))
        steps.append(v2.RandomAffine(degrees=10, shear=shear_degrees))
        steps.append(v2.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.75, 1 / 0.75),
                                          antialias=True))
        min_short_side = math.ceil(max(size) / _MIN_CROP_SIDE)
    else:
        steps.append(v2.Resize(spec.resize, antialias=True))
        steps.append(v2.RandomCrop(size, pad_if_needed=True))
        min_short_side = spec.resize
    steps.append(v2.RandomHorizontalFlip())
    if augmentation in ("crop_color", "crop_color_transform"):
        # Hue ±36 degrees; saturation and lightness ±50 on a 0–255 scale.
        steps.append(v2.ColorJitter(brightness=50 / 255, saturation=50 / 255, hue=36 / 360))
    return ImagePreset(v2.Compose(steps), spec=spec, min_short_side=min_short_side)
