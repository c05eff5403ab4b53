"""The segmentation dataset: decode one pair, apply the label map, run the joint transform.

Each sample's augmentation is seeded by (seed, epoch, index), as classification's
``train.data.dataset`` does, so a job resumed mid-epoch draws exactly the crops and flips an
uninterrupted job would, whatever the number of loader workers. A stream (Pipe mode) hands over
``Streamed`` pairs instead of indexes; their augmentation is seeded by the position in the pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from train.data.base import Streamed
from train.data.dataset import sample_seed
from train.segmentation.data import Pair, open_image, read_mask

JointTransform = Callable[[Image.Image, np.ndarray], tuple[torch.Tensor, torch.Tensor]]


class SegmentationDataset(Dataset):
    """``pairs`` are a File-mode split's files; None for a stream. ``table`` is the label map's
    lookup table (mask value -> class index)."""

    def __init__(self, pairs: Sequence[Pair] | None, table: np.ndarray,
                 transform: JointTransform, seed: int = 0) -> None:
        self.pairs, self.table, self.transform, self.seed = pairs, table, transform, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.pairs is None:
            raise TypeError("a streamed dataset has no length")
        return len(self.pairs)

    def __getitem__(self, index: int | Streamed) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(index, Streamed):
            position, streamed = index.position, index.sample
            image_source, mask_source = streamed.image, streamed.mask
            colors, name = streamed.colors, streamed.name
        else:
            assert self.pairs is not None
            pair = self.pairs[index]
            position, image_source, mask_source = index, pair.image, pair.mask
            colors, name = pair.colors, str(pair.mask)
        with open_image(image_source) as img:
            image = img.convert("RGB")
        mask = self.table[read_mask(mask_source, colors, name)].astype(np.uint8)
        # Seed the augmentation without disturbing the caller's generator (dropout etc.).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, position))
            return self.transform(image, mask)
