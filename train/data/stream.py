"""Streams (Pipe mode) through the same DataLoader, dataset and decoding as random access.

``StreamSampler`` reads a ``StreamReader`` in the training process and hands each raw sample,
wrapped in ``Streamed``, to the DataLoader as if it were an index; ``ImageDataset`` decodes and
augments it in the worker processes exactly as it does a random-access sample. The FIFO is read
once, by one process, and decoding still runs on every worker (an ``IterableDataset`` would have
to choose between the two).

Training order: a bounded shuffle buffer seeded by (seed, epoch). A sample's augmentation is
seeded by its position in that order. A job resumed from a mid-epoch checkpoint restarts that
epoch from its first sample: a FIFO cannot be rewound (File mode resumes exactly).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator
from typing import TypeVar

from torch.utils.data import Sampler

from train.data.base import Streamed, StreamReader
from train.data.dataset import sample_seed

log = logging.getLogger(__name__)

Item = TypeVar("Item")


def shuffle_buffered(items: Iterable[Item], size: int, rng: random.Random) -> Iterator[Item]:
    """Yield ``items`` in a random order using at most ``size`` of them in memory."""
    buffer: list[Item] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = rng.randrange(size)
        yield buffer[j]
        buffer[j] = item
    rng.shuffle(buffer)
    yield from buffer


class StreamSampler(Sampler[Streamed]):
    """One pass of ``reader`` per iteration: pass 0, 1, 2, ... in this process."""

    def __init__(self, reader: StreamReader, *, shuffle_buffer: int, seed: int) -> None:
        self.reader = reader
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.epoch = 0
        self.passes = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if start:
            log.warning("Pipe mode: a stream cannot skip its first %d samples; epoch %d "
                        "restarts from its first sample", start, epoch)
        self.epoch = epoch

    def __iter__(self) -> Iterator[Streamed]:
        return self._generate()

    def _generate(self) -> Iterator[Streamed]:
        # Counted here, when iteration starts: DataLoader may call iter() twice per loader.
        pass_index = self.passes
        self.passes += 1
        samples: Iterable = self.reader.read_pass(pass_index)
        if self.shuffle_buffer > 1:
            rng = random.Random(sample_seed(self.seed, self.epoch, 0))
            samples = shuffle_buffered(samples, self.shuffle_buffer, rng)
        for position, sample in enumerate(samples):
            yield Streamed(position, sample)
