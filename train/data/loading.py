"""Datasets and loaders for the train, validation and test channels.

In a distributed job every rank builds the same datasets and takes its share through its
sampler (``shard``: index and count of this rank for a channel); the classes are agreed between
ranks, since hosts of a ``ShardedByS3Key`` channel may each see only some of them.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import signal
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from common.artifact import InputSpec
from train.contract import INPUT_MODE_PIPE, TrainingEnv
from train.data.base import Reader, StreamReader
from train.data.channels import TEST_NAMES, TRAIN_NAMES, VALIDATION_NAMES, find_channel
from train.data.dataset import Batch, EpochSampler, ImageDataset
from train.data.decode import fast_jpeg_available
from train.data.folder import ImageFolderReader
from train.data.readers import create_reader, select_format
from train.data.splits import SplitFolders, check_no_duplicate_split, find_split_folders
from train.data.stream import StreamSampler
from train.errors import UserError
from train.hyperparameters import Hyperparameters
from train.transforms import train_transform, validation_transform

log = logging.getLogger(__name__)


Shard = Callable[[str], tuple[int, int]]  # channel -> (this rank's index, number of shards)
GatherClasses = Callable[[list[str]], list[list[str]]]  # every rank's class names


@dataclass
class Split:
    channel: str
    dataset: Dataset[Any]  # with set_epoch(epoch)
    sampler: EpochSampler | StreamSampler
    collate_fn: Callable[[list[Any]], Any] | None = Batch
    # make_loader's loaders, kept with the split: their workers live as long as it does.
    loaders: dict[tuple, DataLoader] = field(default_factory=dict, repr=False, compare=False)

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
    # Training images per class and in all, of the whole channel over every host (None for
    # streams).
    label_counts: list[int] | None = None
    labelled_images: int | None = None


def load_data(env: TrainingEnv, params: Hyperparameters, spec: InputSpec, seed: int,
              shard: Shard = lambda channel: (0, 1),
              gather: GatherClasses = lambda names: [names]) -> Data:
    train_channel = find_channel(env, TRAIN_NAMES, required=True)
    assert train_channel is not None
    splits = _split_folders(env, train_channel, params)
    train_reader: Reader | StreamReader
    if splits is not None:
        log.info("channel %s holds split folders: %s", train_channel, splits.describe())
        train_channel = splits.label("train")
        train_reader = ImageFolderReader(splits.folders["train"], train_channel)
    else:
        train_reader = create_reader(env, train_channel, params, shard=shard(train_channel))
    if params.multi_label and isinstance(train_reader, ImageFolderReader):
        raise UserError(
            "multi_label=1 needs data with several labels per image (.lst, RecordIO or an "
            "augmented manifest); image folders carry one label per image"
        )
    class_names = _agree_classes(list(train_reader.class_names or []), gather, train_channel)
    if class_names != train_reader.class_names and isinstance(train_reader, ImageFolderReader):
        train_reader = ImageFolderReader(train_reader.root, train_channel, class_names)
    num_classes = len(class_names) if params.multi_label else None
    counts = _label_counts(train_reader, len(class_names))
    images = len(train_reader) if isinstance(train_reader, Reader) else None
    if counts is not None:
        counts, images = _whole_channel(counts, len(train_reader),  # type: ignore[arg-type]
                                        shard(train_channel)[1], gather)
    if counts is not None:
        log.info("channel %s: %d images in %d classes (%s)", train_channel,
                 images, len(class_names),
                 ", ".join(f"{c}={counts[i]}" for i, c in enumerate(class_names[:10])))
    else:
        log.info("channel %s: streamed in Pipe mode, %d classes", train_channel,
                 len(class_names))
    train = _split(train_channel, train_reader, train_transform(spec, params.augmentation_type),
                   seed=seed, num_classes=num_classes, shuffle=True,
                   shuffle_buffer=params.shuffle_buffer_size, shard=shard(train_channel))

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
            reader = create_reader(env, channel, params, class_names, shard=shard(channel))
        if isinstance(reader, Reader):
            log.info("channel %s: %d images", channel, len(reader))
        return _split(channel, reader, validation_transform(spec), seed=seed,
                      num_classes=num_classes, shuffle=False, shuffle_buffer=0,
                      shard=shard(channel))

    return Data(class_names, train, optional(VALIDATION_NAMES, "validation"),
                optional(TEST_NAMES, "test"), multi_label=params.multi_label,
                label_counts=counts, labelled_images=images)


def _split_folders(env: TrainingEnv, channel: str, params: Hyperparameters
                   ) -> SplitFolders | None:
    """Split folders in an image-folder training channel (the dog-breed upload)."""
    if env.input_mode(channel) == INPUT_MODE_PIPE or select_format(env, channel,
                                                                    params) != "folder":
        return None
    return find_split_folders(env.channel_dir(channel), channel)


def _agree_classes(local: list[str], gather: GatherClasses, channel: str) -> list[str]:
    """The classes every rank trains: the same everywhere unless hosts hold different shards
    of the data (``ShardedByS3Key``). Folder names are united (and sorted, as one folder
    listing would be); numbered classes (RecordIO, .lst, manifests) take the largest count."""
    every = gather(local)
    if all(names == local for names in every):
        return local
    if all(names == [str(i) for i in range(len(names))] for names in every):
        agreed = [str(i) for i in range(max(len(names) for names in every))]
    elif all(names == sorted(names) for names in every):
        agreed = sorted({name for names in every for name in names})
    else:
        raise UserError(f"channel {channel!r}: the hosts read different class names from their "
                        "shards of the data; use S3DistributionType FullyReplicated, or name "
                        "every class the same on every shard")
    log.info("channel %s: %d classes over all hosts (this host's data has %d)", channel,
             len(agreed), len(local))
    return agreed


def _whole_channel(counts: list[int], images: int, shards: int, gather: Any
                   ) -> tuple[list[int], int]:
    """Label counts and image count of the whole channel: the hosts of a ShardedByS3Key
    channel each hold a part (split between fewer shards than there are ranks, one rank per
    host taken), so theirs add up; a replicated channel is whole on every host."""
    every = gather((counts, images))
    if shards >= len(every):
        return counts, images
    hosts = every[::shards]
    return [sum(c[i] for c, _ in hosts) for i in range(len(counts))], sum(n for _, n in hosts)


def _label_counts(reader: Reader | StreamReader, num_classes: int) -> list[int] | None:
    if isinstance(reader, StreamReader):
        return None
    counts: Counter[int] = Counter()
    for target in reader.targets():
        counts.update(target if isinstance(target, tuple) else (target,))
    return [counts[i] for i in range(num_classes)]


def _split(channel: str, reader: Reader | StreamReader, transform, *, seed: int,
           num_classes: int | None, shuffle: bool, shuffle_buffer: int,
           shard: tuple[int, int]) -> Split:
    if isinstance(reader, StreamReader):  # sharded by the stream itself
        dataset = ImageDataset(None, transform, seed, num_classes)
        buffer = shuffle_buffer if shuffle else 0
        return Split(channel, dataset, StreamSampler(reader, shuffle_buffer=buffer, seed=seed))
    dataset = ImageDataset(reader, transform, seed, num_classes)
    index, count = shard
    return Split(channel, dataset, EpochSampler(len(dataset), shuffle=shuffle, seed=seed,
                                                rank=index, num_replicas=count, pad=shuffle))


def default_num_workers(cuda: bool, processes: int = 1) -> int:
    """Loader processes when ``num_workers`` is not set, for each of an instance's
    ``processes`` training processes.

    With a GPU, workers keep it fed: one per core but the training process's own, up to 8 per
    GPU (one worker decodes and augments 600–800 photo-sized JPEGs a second on this project's
    CPUs, bench/results/data_peers.md; a ResNet-50 AMP step takes a few thousand a second on
    a current GPU — not measured here, no GPU). On CPU the workers compete with the model for
    the same cores (bench/results/train.md), so only spare cores beyond four get a worker.
    """
    cores = len(os.sched_getaffinity(0)) // max(processes, 1)
    if not cuda:
        return min(8, cores // 4)
    gpus = max(1, torch.cuda.device_count() // max(processes, 1))
    return max(1, min(cores - 1, 8 * gpus))


def _keep_group_signals_away(_worker_id: int) -> None:
    # A SIGTERM sent to the trainer's process group must reach only the trainer, which
    # checkpoints and then stops the workers itself; a worker dying first would turn a clean
    # stop into a crash. In a process group of its own a worker misses group signals, while a
    # SIGTERM sent to it directly (multiprocessing's clean-up at exit) still ends it. (Ignoring
    # SIGTERM instead made an exiting trainer wait forever for persistent workers.)
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def make_loader(split: Split, batch_size: int, num_workers: int, pin_memory: bool) -> DataLoader:
    """The split's loader; the same one for the same settings, epoch after epoch.

    For an ``ImageDataset`` its worker processes persist: starting and stopping them every
    epoch cost 5–6 % of the images/s on 1,000-image epochs on 2 cores
    (bench/results/data_peers.md). They read the epoch from the dataset's shared memory and
    take indexes from the sampler in this process, so ``set_epoch`` on both still decides the
    order and the augmentation. Other datasets keep their epoch in the process, so their
    workers are started anew every epoch.
    """
    key = (batch_size, num_workers, pin_memory)
    loader = split.loaders.get(key)
    if loader is None:
        images = isinstance(split.dataset, ImageDataset)
        persistent = images and num_workers > 0
        collate = split.collate_fn
        if images and collate is Batch:
            collate = functools.partial(Batch, normalization=split.dataset.normalization)
        loader = DataLoader(
            split.dataset,
            batch_size=batch_size,
            sampler=split.sampler,
            num_workers=num_workers,
            collate_fn=collate,
            pin_memory=pin_memory,
            worker_init_fn=_keep_group_signals_away,
            persistent_workers=persistent,
            # Its own generator: creating an iterator must not consume the global RNG, or a
            # resumed job's dropout masks would differ from an uninterrupted one.
            generator=torch.Generator().manual_seed(0),
        )
        split.loaders[key] = loader
        if persistent:
            atexit.register(_stop_workers, weakref.ref(loader))
        if images:
            log.info("channel %s: %s, %s batches, JPEG decoding by %s", split.channel,
                     f"{num_workers} loader worker processes for the whole job" if num_workers
                     else "decoding in the training process (num_workers=0)",
                     "uint8" if split.dataset.normalization else "float32",
                     "simplejpeg" if fast_jpeg_available() else "Pillow")
    return loader


def stop_workers(split: Split) -> None:
    """Stop the worker processes of the split's loaders now rather than at exit."""
    for loader in split.loaders.values():
        _stop_workers(weakref.ref(loader))


def _stop_workers(loader_ref: weakref.ref) -> None:
    # At exit, stop the workers the orderly way (their queues drained and closed) before
    # multiprocessing's clean-up terminates them; registered after torch's own exit hook,
    # this runs before it.
    loader = loader_ref()
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None:
        iterator._shutdown_workers()
        loader._iterator = None
