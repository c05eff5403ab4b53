"""The segmentation dataset: decode one pair, apply the label map, run the joint transform.

Each sample's augmentation is seeded by (seed, epoch, index), as classification's
``train.data.dataset`` does, so a job resumed mid-epoch draws exactly the crops and flips an
uninterrupted job would, whatever the number of loader workers. A stream (Pipe mode) hands over
``Streamed`` pairs instead of indexes; their augmentation is seeded by the position in the pass.

A streamed pair is checked here, in the loader worker that decodes it anyway (File mode checked
every pair before training). A bad one becomes a ``BadPair`` carrying the ``UserError``'s
message, which ``collate`` passes on as the batch: the training process raises it as it is, so
the failure reads as the problem, not as a worker's traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from train.data.base import Streamed
from train.data.dataset import sample_seed
from train.errors import UserError
from train.segmentation.data import Pair, check_decoded, open_image, read_mask

JointTransform = Callable[[Image.Image, np.ndarray], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class BadPair:
    """A streamed pair that failed its check, in place of its tensors (and of its batch)."""

    message: str

    def raise_error(self) -> None:
        raise UserError(self.message)


def collate(items: list[tuple[torch.Tensor, torch.Tensor] | BadPair]
            ) -> tuple[torch.Tensor, torch.Tensor] | BadPair:
    bad = next((item for item in items if isinstance(item, BadPair)), None)
    return bad if bad is not None else default_collate(items)


class SegmentationDataset(Dataset):
    """``pairs`` are a File-mode split's files; None for a stream. ``table`` is the label map's
    lookup table (mask value -> class index); ``num_classes`` bounds a streamed mask's values."""

    def __init__(self, pairs: Sequence[Pair] | None, table: np.ndarray,
                 transform: JointTransform, seed: int = 0, num_classes: int = 256) -> None:
        self.pairs, self.table, self.transform, self.seed = pairs, table, transform, seed
        self.num_classes = num_classes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.pairs is None:
            raise TypeError("a streamed dataset has no length")
        return len(self.pairs)

    def __getitem__(self, index: int | Streamed
                    ) -> tuple[torch.Tensor, torch.Tensor] | BadPair:
        if isinstance(index, Streamed):
            streamed = index.sample
            try:
                image, values = self._checked(streamed)
            except UserError as exc:
                return BadPair(str(exc))
            position = index.position
        else:
            assert self.pairs is not None
            pair = self.pairs[index]
            with open_image(pair.image) as img:
                image = img.convert("RGB")
            values, position = read_mask(pair.mask, pair.colors, str(pair.mask)), index
        mask = self.table[values].astype(np.uint8)
        # Seed the augmentation without disturbing the caller's generator (dropout etc.).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, position))
            return self.transform(image, mask)

    def _checked(self, streamed: Any) -> tuple[Image.Image, np.ndarray]:
        """Decode a streamed pair, checked as File mode checks every pair up front."""
        try:
            with open_image(streamed.image) as img:
                image = img.convert("RGB")
        except Exception as exc:
            raise UserError(f"image {streamed.image_name} cannot be read ({exc}); replace or "
                            "remove it") from exc
        values = read_mask(streamed.mask, streamed.colors, streamed.mask_name)
        check_decoded(image.size, values, self.table, self.num_classes, streamed.image_name,
                      streamed.mask_name)
        return image, values
