"""Decoding, augmentation and sampling on top of any reader, repeatable to the sample.

Every random choice is a function of (seed, epoch, sample index): the shuffle order comes from
``EpochSampler`` and each sample's augmentation from a generator seeded per sample. A job that is
stopped mid-epoch and resumed therefore sees exactly the batches an uninterrupted job would.
Streams (Pipe mode) hand over ``Streamed`` samples instead of indexes (``train.data.stream``);
their augmentation is seeded by the position in the pass.

Targets: a class index, or for multi-label data a multi-hot float vector of ``num_classes``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from common.preprocessing import ImageDecodeError, decode_image
from train.data.base import Reader, Streamed, Target

log = logging.getLogger(__name__)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    # Distinct, well-spread seeds for every (seed, epoch, index) triple.
    return (seed * 1_000_003 + epoch * 7_919 + index * 104_729) % (2**63 - 1)


class ImageDataset(Dataset):
    """Samples decoded to RGB and transformed; unreadable ones become ``(None, name)``.

    ``reader`` is None for a stream: the sampler then passes ``Streamed`` samples as indexes.
    ``num_classes`` is set for multi-label data (targets become multi-hot vectors).
    """

    def __init__(self, reader: Reader | None, transform: Callable[[Any], torch.Tensor],
                 seed: int, num_classes: int | None = None):
        self.reader = reader
        self.transform = transform
        self.seed = seed
        self.num_classes = num_classes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.reader is None:
            raise TypeError("a streamed dataset has no length")
        return len(self.reader)

    def __getitem__(self, index: int | Streamed) -> tuple[torch.Tensor, Any] | tuple[None, str]:
        if isinstance(index, Streamed):
            position, name = index.position, index.sample.name
        else:
            position, name = index, f"sample {index}"
        try:
            sample = index.sample if isinstance(index, Streamed) else self.reader.read(index)
            name = sample.name
            image = decode_image(sample.data)
        except (OSError, ImageDecodeError) as exc:
            log.warning("skipping unreadable image %s: %s", name, exc)
            return None, name
        # Seed the augmentation without disturbing the caller's generator (dropout etc.).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, position))
            tensor = self.transform(image)
        return tensor, self._target(sample.target)

    def _target(self, target: Target) -> Any:
        if self.num_classes is None:
            return target
        vector = torch.zeros(self.num_classes)
        vector[list(target if isinstance(target, tuple) else (target,))] = 1.0
        return vector


class Batch:
    """A collated batch plus the names of samples that could not be decoded."""

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        good = [(x, y) for x, y in items if x is not None]
        self.bad_names = [y for x, y in items if x is None]
        self.size = len(good)
        if good:
            self.images = torch.stack([x for x, _ in good])
            targets = [y for _, y in good]
            self.targets = (torch.stack(targets) if isinstance(targets[0], torch.Tensor)
                            else torch.as_tensor(targets))
        else:
            self.images = torch.empty(0)
            self.targets = torch.empty(0, dtype=torch.long)

    def pin_memory(self) -> Batch:
        self.images = self.images.pin_memory()
        self.targets = self.targets.pin_memory()
        return self


class EpochSampler(Sampler[int]):
    """A shuffle order fixed by (seed, epoch); can start part-way through an epoch.

    With ``num_replicas`` > 1 each rank takes every ``num_replicas``-th index of the same order,
    so that one step of all ranks covers the samples one large batch would. ``pad`` (training)
    repeats the order's first samples until every rank has as many, so that all ranks take the
    same number of steps; evaluation shards without padding, counting each sample once.
    ``start`` counts samples of the whole order (all ranks), so a checkpoint written by a job
    of one size resumes in a job of another.
    """

    def __init__(
        self,
        size: int,
        *,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        num_replicas: int = 1,
        pad: bool = False,
    ) -> None:
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.num_replicas = num_replicas
        self.pad = pad
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use ``epoch``'s order and skip its first ``start`` samples (of all ranks)."""
        self.epoch = epoch
        self.start = start

    def _order(self) -> list[int]:
        if not self.shuffle:
            order = list(range(self.size))
        else:
            generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, 0))
            order = torch.randperm(self.size, generator=generator).tolist()
        if self.pad and order:
            missing = -len(order) % self.num_replicas
            order += (order * (missing // len(order) + 1))[:missing]
        return order[self.start :][self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order())

    def __len__(self) -> int:
        return len(self._order())
