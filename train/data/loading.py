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
from train.contract import INPUT_MODE_PIPE, TrainingEnv
from train.data.base import Reader, StreamReader
from train.data.channels import TEST_NAMES, TRAIN_NAMES, VALIDATION_NAMES, find_channel
from train.data.dataset import Batch, EpochSampler, ImageDataset
from train.data.folder import ImageFolderReader
from train.data.readers import create_reader, select_format
from train.data.splits import SplitFolders, check_no_duplicate_split, find_split_folders
from train.data.stream import StreamSampler
from train.errors import UserError
from train.hyperparameters import Hyperparameters
from train.transforms import train_transform

log = logging.getLogger(__name__)


@dataclass
class Split:
    channel: str
    dataset: ImageDataset
    sampler: EpochSampler | StreamSampler

    @property
    def streamed(self) -> bool:
        return isinstance(self.sampler, StreamSampler)

    @property
    def size(self) -> int | None:
        """Samples per epoch, or None for a stream (unknown until it ends)."""
        return None if self.streamed else len(self.dataset)


@dataclass
class Data:
    class_names: list[str]
    train: Split
    validation: Split | None
    test: Split | None
    multi_label: bool = False
    label_counts: list[int] | None = None  # training images per class (None for streams)


def load_data(env: TrainingEnv, params: Hyperparameters, spec: InputSpec, seed: int) -> Data:
    train_channel = find_channel(env, TRAIN_NAMES, required=True)
    assert train_channel is not None
    splits = _split_folders(env, train_channel, params)
    if splits is not None:
        log.info("channel %s holds split folders: %s", train_channel, splits.describe())
        train_channel = splits.label("train")
        train_reader: Reader | StreamReader = ImageFolderReader(splits.folders["train"],
                                                                train_channel)
    else:
        train_reader = create_reader(env, train_channel, params)
    if params.multi_label and isinstance(train_reader, ImageFolderReader):
        raise UserError(
            "multi_label=1 needs data with several labels per image (.lst, RecordIO or an "
            "augmented manifest); image folders carry one label per image"
        )
    class_names = list(train_reader.class_names or [])
    num_classes = len(class_names) if params.multi_label else None
    counts = _label_counts(train_reader, len(class_names))
    if counts is not None:
        log.info("channel %s: %d images in %d classes (%s)", train_channel,
                 len(train_reader), len(class_names),  # type: ignore[arg-type]
                 ", ".join(f"{c}={counts[i]}" for i, c in enumerate(class_names[:10])))
    else:
        log.info("channel %s: streamed in Pipe mode, %d classes", train_channel,
                 len(class_names))
    train = _split(train_channel, train_reader, train_transform(spec, params.augmentation_type),
                   seed=seed, num_classes=num_classes, shuffle=True,
                   shuffle_buffer=params.shuffle_buffer_size)

    def optional(names: tuple[str, ...], role: str) -> Split | None:
        channel = find_channel(env, names, required=False)
        if splits is not None:
            check_no_duplicate_split(splits, role, channel)
        reader: Reader | StreamReader
        if splits is not None and role in splits.folders:
            channel = splits.label(role)
            reader = ImageFolderReader(splits.folders[role], channel, class_names)
        elif channel is None:
            return None
        else:
            reader = create_reader(env, channel, params, class_names)
        if isinstance(reader, Reader):
            log.info("channel %s: %d images", channel, len(reader))
        return _split(channel, reader, eval_transform(spec), seed=seed, num_classes=num_classes,
                      shuffle=False, shuffle_buffer=0)

    return Data(class_names, train, optional(VALIDATION_NAMES, "validation"),
                optional(TEST_NAMES, "test"), multi_label=params.multi_label,
                label_counts=counts)


def _split_folders(env: TrainingEnv, channel: str, params: Hyperparameters
                   ) -> SplitFolders | None:
    """Split folders in an image-folder training channel (the dog-breed upload)."""
    if env.input_mode(channel) == INPUT_MODE_PIPE or select_format(env, channel,
                                                                    params) != "folder":
        return None
    return find_split_folders(env.channel_dir(channel), channel)


def _label_counts(reader: Reader | StreamReader, num_classes: int) -> list[int] | None:
    if isinstance(reader, StreamReader):
        return None
    counts: Counter[int] = Counter()
    for target in reader.targets():
        counts.update(target if isinstance(target, tuple) else (target,))
    return [counts[i] for i in range(num_classes)]


def _split(channel: str, reader: Reader | StreamReader, transform, *, seed: int,
           num_classes: int | None, shuffle: bool, shuffle_buffer: int) -> Split:
    if isinstance(reader, StreamReader):
        dataset = ImageDataset(None, transform, seed, num_classes)
        buffer = shuffle_buffer if shuffle else 0
        return Split(channel, dataset, StreamSampler(reader, shuffle_buffer=buffer, seed=seed))
    dataset = ImageDataset(reader, transform, seed, num_classes)
    return Split(channel, dataset, EpochSampler(len(dataset), shuffle=shuffle, seed=seed))


def default_num_workers(cuda: bool) -> int:
    """Loader processes when ``num_workers`` is not set.

    With a GPU, workers keep it fed: one per core, at most 8. On CPU they compete with the
    model for the same cores (bench/results/train.md: 0 workers is faster on 2 cores), so only
    spare cores beyond four get a worker.
    """
    cores = len(os.sched_getaffinity(0))
    return min(8, cores) if cuda else min(8, cores // 4)


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
