"""Decoding, augmentation and sampling on top of any reader, repeatable to the sample.

Every random choice is a function of (seed, epoch, sample index): the shuffle order comes from
``EpochSampler`` and each sample's augmentation from a generator seeded per sample. A job that is
stopped mid-epoch and resumed therefore sees exactly the batches an uninterrupted job would.
Streams (Pipe mode) hand over ``Streamed`` samples instead of indexes (``train.data.stream``);
their augmentation is seeded by the position in the pass.

Targets: a class index, or for multi-label data a multi-hot float vector of ``num_classes``.

Images travel as ``uint8`` (``train.transforms.ImagePreset``); ``Batch.model_input`` turns a batch
into the network's normalized float input on the training device. In a loader worker the batch
is assembled directly in shared memory, so handing it to the training process copies nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler, get_worker_info
from torchvision.transforms.v2 import functional as F

from common.preprocessing import ImageDecodeError, decode_image
from train.data.base import Reader, Streamed, Target
from train.transforms import ImagePreset

log = logging.getLogger(__name__)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    # Distinct, well-spread seeds for every (seed, epoch, index) triple.
    return (seed * 1_000_003 + epoch * 7_919 + index * 104_729) % (2**63 - 1)


class ImageDataset(Dataset):
    """Samples decoded and transformed; unreadable ones become ``(None, name)``.

    ``transform`` is an ``ImagePreset`` (bytes → ``uint8`` tensor; normalized later, on the
    device) or any callable on RGB PIL images that returns the finished tensor.
    ``reader`` is None for a stream: the sampler then passes ``Streamed`` samples as indexes.
    ``num_classes`` is set for multi-label data (targets become multi-hot vectors).
    """

    def __init__(self, reader: Reader | None, transform: Callable[[Any], torch.Tensor],
                 seed: int, num_classes: int | None = None):
        self.reader = reader
        self.transform = transform
        self.seed = seed
        self.num_classes = num_classes
        # In shared memory: loader workers live across epochs and must see the new one.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    @property
    def normalization(self) -> Normalization | None:
        """Mean and std still to apply to the batches (None: the transform applied them)."""
        if isinstance(self.transform, ImagePreset):
            return Normalization(self.transform.mean, self.transform.std)
        return None

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        if self.reader is None:
            raise TypeError("a streamed dataset has no length")
        return len(self.reader)

    def __getitem__(self, index: int | Streamed) -> tuple[torch.Tensor, Any] | tuple[None, str]:
        if isinstance(index, Streamed):
            position, name = index.position, index.sample.name
        else:
            position, name = index, f"sample {index}"
        # Seed the augmentation without disturbing the caller's generator (dropout etc.).
        # The CPU generator alone: torch.manual_seed also reseeds every other backend and
        # costs 100 times as much, a tenth of a small image's whole preprocessing.
        state = torch.get_rng_state()
        torch.default_generator.manual_seed(sample_seed(self.seed, self.epoch, position))
        try:
            sample = index.sample if isinstance(index, Streamed) else self.reader.read(index)
            name = sample.name
            tensor = self._transform(sample.data)
        except (OSError, ImageDecodeError) as exc:
            log.warning("skipping unreadable image %s: %s", name, exc)
            return None, name
        finally:
            torch.set_rng_state(state)
        return tensor, self._target(sample.target)

    def _transform(self, data: bytes) -> torch.Tensor:
        if isinstance(self.transform, ImagePreset):
            return self.transform(data)
        return self.transform(decode_image(data))

    def _target(self, target: Target) -> Any:
        if self.num_classes is None:
            return target
        vector = torch.zeros(self.num_classes)
        vector[list(target if isinstance(target, tuple) else (target,))] = 1.0
        return vector


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std on the 0–1 scale (the artifact's ``input.mean``/``std``)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


class Batch:
    """A collated batch plus the names of samples that could not be decoded.

    ``images`` are ``uint8`` when ``normalization`` is set (``model_input`` finishes them), else
    the transform's finished float tensors.
    """

    def __init__(self, items: list[tuple[Any, Any]],
                 normalization: Normalization | None = None) -> None:
        good = [(x, y) for x, y in items if x is not None]
        self.bad_names = [y for x, y in items if x is None]
        self.size = len(good)
        self.normalization = normalization
        if good:
            self.images = _stack([x for x, _ in good])
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

    def model_input(self, device: torch.device, *, channels_last: bool) -> torch.Tensor:
        """The images on ``device`` as the network takes them: float, normalized.

        The ``uint8`` batch crosses to the device (a quarter of the bytes), is put in the
        network's memory format there, then converted and normalized with the very functions
        ``common.preprocessing.eval_transform`` applies to single images, so the numbers are
        the same.
        """
        images = self.images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.normalization is None:
            return images
        images = F.to_dtype(images, torch.float32, scale=True)
        return F.normalize(images, list(self.normalization.mean),
                           list(self.normalization.std), inplace=True)


def _stack(images: list[torch.Tensor]) -> torch.Tensor:
    first = images[0]
    if get_worker_info() is None:
        return torch.stack(images)
    # In a loader worker: build the batch in shared memory at once. Stacking into ordinary
    # memory would make the hand-over to the training process copy it again.
    storage = first._typed_storage()._new_shared(len(images) * first.numel())
    out = first.new(storage).resize_(len(images), *first.shape)
    return torch.stack(images, out=out)


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
