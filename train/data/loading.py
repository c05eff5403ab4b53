"""Datasets and loaders for the train, validation and test channels."""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from common.artifact import InputSpec
from common.preprocessing import eval_transform
from train.contract import TrainingEnv
from train.data.channels import TEST_NAMES, TRAIN_NAMES, VALIDATION_NAMES, find_channel
from train.data.dataset import Batch, EpochSampler, ImageDataset
from train.data.readers import create_reader
from train.hyperparameters import Hyperparameters
from train.transforms import train_transform

log = logging.getLogger(__name__)


@dataclass
class Split:
    channel: str
    dataset: ImageDataset
    sampler: EpochSampler


@dataclass
class Data:
    class_names: list[str]
    train: Split
    validation: Split | None
    test: Split | None


def load_data(env: TrainingEnv, params: Hyperparameters, spec: InputSpec, seed: int) -> Data:
    train_channel = find_channel(env, TRAIN_NAMES, required=True)
    assert train_channel is not None
    train_reader = create_reader(env, train_channel, None)
    class_names = list(train_reader.class_names or [])
    counts = Counter(train_reader.targets())
    log.info("channel %s: %d images in %d classes (%s)", train_channel, len(train_reader),
             len(class_names), ", ".join(f"{c}={counts[i]}" for i, c in
                                         enumerate(class_names[:10])))
    train = _split(train_channel, ImageDataset(
        train_reader, train_transform(spec, params.augmentation_type), seed), shuffle=True,
        seed=seed)

    def optional(names: tuple[str, ...]) -> Split | None:
        channel = find_channel(env, names, required=False)
        if channel is None:
            return None
        reader = create_reader(env, channel, class_names)
        log.info("channel %s: %d images", channel, len(reader))
        return _split(channel, ImageDataset(reader, eval_transform(spec), seed), shuffle=False,
                      seed=seed)

    return Data(class_names, train, optional(VALIDATION_NAMES), optional(TEST_NAMES))


def _split(channel: str, dataset: ImageDataset, *, shuffle: bool, seed: int) -> Split:
    return Split(channel, dataset, EpochSampler(len(dataset), shuffle=shuffle, seed=seed))


def default_num_workers() -> int:
    return min(8, len(os.sched_getaffinity(0)))


def _ignore_sigterm(_worker_id: int) -> None:
    # SIGTERM to the process group must reach the trainer, which checkpoints and stops the
    # workers itself; a worker dying first would turn a clean stop into a crash.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(split: Split, batch_size: int, num_workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(
        split.dataset,
        batch_size=batch_size,
        sampler=split.sampler,
        num_workers=num_workers,
        collate_fn=Batch,
        pin_memory=pin_memory,
        worker_init_fn=_ignore_sigterm,
        # Its own generator: creating an iterator must not consume the global RNG, or a
        # resumed job's dropout masks would differ from an uninterrupted one.
        generator=torch.Generator().manual_seed(0),
    )
