"""Joint (image, mask) transforms: images resized bilinearly, masks with nearest neighbour and
padded with 255 (ignored), so labels are never blended.

Training, as the built-in describes: scale the long side to ``base_size`` x U(0.5, 2.0), pad to
at least ``crop`` (image 0, mask 255), random ``crop`` x ``crop`` square, horizontal flip with
probability 0.5. Validation: shorter side to ``crop``, centre ``crop`` x ``crop`` square.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD

IGNORE_INDEX = 255


def to_tensors(image: Image.Image, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (pixels - mean) / std, torch.from_numpy(mask.astype(np.int64))


def _resize(image: Image.Image, mask: Image.Image, size: tuple[int, int]
            ) -> tuple[Image.Image, Image.Image]:
    return image.resize(size, Image.BILINEAR), mask.resize(size, Image.NEAREST)


class TrainTransform:
    def __init__(self, *, base_size: int, crop: int, hflip_prob: float = 0.5) -> None:
        self.base_size, self.crop, self.hflip_prob = base_size, crop, hflip_prob

    def __call__(self, image: Image.Image, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        labels = Image.fromarray(mask)
        long_side = int(self.base_size * (0.5 + 1.5 * torch.rand(()).item()))
        w, h = image.size
        ratio = long_side / max(w, h)
        image, labels = _resize(image, labels, (max(1, round(w * ratio)), max(1, round(h * ratio))))
        w, h = image.size
        pad_w, pad_h = max(0, self.crop - w), max(0, self.crop - h)
        if pad_w or pad_h:
            padded = Image.new("RGB", (w + pad_w, h + pad_h))
            padded.paste(image)
            padded_labels = Image.new("L", padded.size, IGNORE_INDEX)
            padded_labels.paste(labels)
            image, labels = padded, padded_labels
            w, h = image.size
        left = int(torch.randint(0, w - self.crop + 1, ()).item())
        top = int(torch.randint(0, h - self.crop + 1, ()).item())
        box = (left, top, left + self.crop, top + self.crop)
        image, labels = image.crop(box), labels.crop(box)
        if torch.rand(()).item() < self.hflip_prob:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
            labels = labels.transpose(Image.FLIP_LEFT_RIGHT)
        return to_tensors(image, np.asarray(labels))


class EvalTransform:
    def __init__(self, *, crop: int) -> None:
        self.crop = crop

    def __call__(self, image: Image.Image, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        labels = Image.fromarray(mask)
        w, h = image.size
        ratio = self.crop / min(w, h)
        size = (max(self.crop, round(w * ratio)), max(self.crop, round(h * ratio)))
        image, labels = _resize(image, labels, size)
        left, top = (size[0] - self.crop) // 2, (size[1] - self.crop) // 2
        box = (left, top, left + self.crop, top + self.crop)
        return to_tensors(image.crop(box), np.asarray(labels.crop(box)))
