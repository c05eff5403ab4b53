"""The segmentation dataset: decode one pair, apply the label map, run the joint transform."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from train.segmentation.data import Split, read_mask

JointTransform = Callable[[Image.Image, np.ndarray], tuple[torch.Tensor, torch.Tensor]]


class SegmentationDataset(Dataset):
    def __init__(self, split: Split, transform: JointTransform) -> None:
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.split.pairs[index]
        with Image.open(pair.image) as img:
            image = img.convert("RGB")
        mask = self.split.table[read_mask(pair.mask)].astype(np.uint8)
        return self.transform(image, mask)
