"""Pick the reader for a channel from its content type, input mode and files.

Rules, first match wins (the hyperparameter ``data_format`` replaces steps 1-4):

1. Pipe mode with ``RecordWrapperType=RecordIO`` (SageMaker wraps records only for augmented
   manifests), or ``AttributeNames`` written by our own tools → augmented manifest;
2. ContentType ``application/x-recordio`` → MXNet RecordIO (``.rec``), except in File mode
   when the channel holds a ``.manifest``/``.jsonl`` file and no ``.rec`` → augmented manifest;
3. ContentType ``application/x-image`` / ``image/*`` / none, and a ``<channel>_lst`` channel
   exists → images + ``.lst``;
4. same content types, File mode: a ``.manifest``/``.jsonl`` file at the channel's top level →
   augmented manifest; with no ContentType at all, ``.rec`` files → RecordIO; else class folders.

File and FastFile mode read every format at random. Pipe mode reads RecordIO and augmented
manifests (``RecordWrapperType=RecordIO``) as streams; folders and ``.lst`` need File mode.
"""

from __future__ import annotations

import logging
from pathlib import Path

from train.contract import INPUT_MODE_PIPE, TrainingEnv
from train.data.base import Reader, StreamReader
from train.data.channels import images_channel, lst_channel
from train.data.folder import ImageFolderReader
from train.data.labels import LabelSpec, parse_label_format
from train.data.lst import ImageListReader
from train.data.manifest import ManifestReader, manifest_files
from train.data.pipe import (
    ManifestStream,
    RecordIOStream,
    check_record_wrapper,
    is_streamed_manifest,
    streamed_attributes,
)
from train.data.rec import RecordFileReader
from train.errors import UserError
from train.hyperparameters import Hyperparameters

log = logging.getLogger(__name__)

CONTENT_TYPE_RECORDIO = "application/x-recordio"
# Content types that mean "image files" (None: the channel declared none).
IMAGE_CONTENT_TYPES = frozenset(
    {None, "application/x-image", "image/jpeg", "image/png", "application/octet-stream"}
)


def select_format(env: TrainingEnv, channel: str, params: Hyperparameters) -> str:
    """One of ``folder``, ``lst``, ``recordio``, ``manifest`` (see the module docstring)."""
    if params.data_format != "auto":
        return params.data_format
    config = env.channels.get(channel)
    content_type = env.content_type(channel)
    base_type = content_type.split(";")[0].strip().lower() if content_type else None
    if is_streamed_manifest(config) or (config is not None and config.attribute_names):
        return "manifest"
    pipe = env.input_mode(channel) == INPUT_MODE_PIPE
    folder = env.channel_dir(channel)
    if base_type == CONTENT_TYPE_RECORDIO:
        if not pipe and manifest_files(folder) and not _has_rec(folder):
            return "manifest"
        return "recordio"
    if base_type not in IMAGE_CONTENT_TYPES:
        raise UserError(
            f"channel {channel!r} has ContentType {content_type!r}, which this algorithm does "
            "not read; use application/x-recordio (.rec files or an augmented manifest), "
            "application/x-image (image folders, or images + .lst), image/jpeg or image/png"
        )
    if lst_channel(channel) in env.available_channels():
        return "lst"
    if pipe:
        return "folder"
    if manifest_files(folder):
        return "manifest"
    if base_type is None and _has_rec(folder):
        return "recordio"
    return "folder"


def _has_rec(folder: Path) -> bool:
    return folder.is_dir() and any(folder.rglob("*.rec"))


def create_reader(env: TrainingEnv, channel: str, params: Hyperparameters,
                  class_names: list[str] | None = None, *, shard: tuple[int, int] = (0, 1)
                  ) -> Reader | StreamReader:
    """The channel's reader; ``class_names`` (from the training channel) fixes the labels.
    ``shard`` (this rank's index, number of shards) splits a stream between ranks; random
    access readers are shared out by their sampler instead."""
    data_format = select_format(env, channel, params)
    labels = LabelSpec(
        multi_label=params.multi_label,
        label_format=parse_label_format(env.content_type(channel)),
        num_classes=len(class_names) if class_names is not None else params.num_classes,
    )
    folder = env.channel_dir(channel)
    config = env.channels.get(channel)
    attribute_names = config.attribute_names if config else ()
    if env.input_mode(channel) == INPUT_MODE_PIPE:
        return _stream(env, channel, params, data_format, labels, shard)
    if data_format == "recordio":
        return RecordFileReader(folder, channel, labels)
    if data_format == "lst":
        return ImageListReader(folder, env.channel_dir(lst_channel(channel)), channel, labels,
                               class_names)
    if data_format == "manifest":
        images = images_channel(env, channel)
        return ManifestReader(
            folder, channel, labels,
            images=env.channel_dir(images) if images else folder,
            attribute_names=attribute_names, label_attribute=params.label_attribute,
            source_ref_prefix=params.source_ref_prefix, class_names=class_names,
        )
    return ImageFolderReader(folder, channel, class_names)


def _stream(env: TrainingEnv, channel: str, params: Hyperparameters, data_format: str,
            labels: LabelSpec, shard: tuple[int, int]) -> StreamReader:
    data_dir = env.channel_dir(channel).parent
    rank, replicas = shard
    if data_format == "recordio":
        return RecordIOStream(data_dir, channel, labels, wait_seconds=params.pipe_wait_seconds,
                              rank=rank, num_replicas=replicas)
    if data_format == "manifest":
        config = env.channels.get(channel)
        check_record_wrapper(channel, config.record_wrapper_type if config else None)
        attributes = streamed_attributes(channel, config, params.attribute_names,
                                         params.label_attribute)
        log.info("channel %s: streamed augmented manifest, %s", channel, attributes.describe())
        return ManifestStream(data_dir, channel, labels, attributes=attributes,
                              wait_seconds=params.pipe_wait_seconds, rank=rank,
                              num_replicas=replicas)
    raise UserError(
        f"channel {channel!r} uses Pipe input mode, but {_DESCRIBE[data_format]} need File or "
        "FastFile mode; set input_mode='File' for this channel, or stream RecordIO "
        "(application/x-recordio) or an augmented manifest"
    )


_DESCRIBE = {"folder": "image folders", "lst": "images with .lst lists"}
