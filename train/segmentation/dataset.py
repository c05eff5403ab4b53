"""The segmentation dataset: decode one pair, apply the label map, run the joint transform.

Each sample's augmentation is seeded by (seed, epoch, index), as classification's
``train.data.dataset`` does, so a job resumed mid-epoch draws exactly the crops and flips an
uninterrupted job would, whatever the number of loader workers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from train.data.dataset import sample_seed
from train.segmentation.data import Split, read_mask

JointTransform = Callable[[Image.Image, np.ndarray], tuple[torch.Tensor, torch.Tensor]]


class SegmentationDataset(Dataset):
    def __init__(self, split: Split, transform: JointTransform, seed: int = 0) -> None:
        self.split, self.transform, self.seed = split, transform, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.split.pairs[index]
        with Image.open(pair.image) as img:
            image = img.convert("RGB")
        mask = self.split.table[read_mask(pair.mask, pair.colors)].astype(np.uint8)
        # Seed the augmentation without disturbing the caller's generator (dropout etc.).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, index))
            return self.transform(image, mask)
