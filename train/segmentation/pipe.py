"""Semantic segmentation in Pipe mode: Ground Truth augmented manifests streamed by SageMaker.

With ``RecordWrapperType=RecordIO`` and ``AttributeNames`` like ``["source-ref", "cats-ref"]``
SageMaker writes, for every manifest line, one RecordIO record per attribute to the channel's
FIFO: the bytes of the S3 object each ``-ref`` attribute points to (the photo, then the label
PNG) and the JSON value of any other attribute. SageMaker does not tell the container the
names: two records per sample (photo, label PNG) are assumed, as the built-in algorithm does.
Listing ``"cats-ref-metadata"`` as a third attribute streams Ground Truth's
``internal-color-map`` with each line, so colour label PNGs become class ids as in File mode;
the job then needs the hyperparameter ``attribute_names`` (the list given to the SDK) to group
the records (``train.data.pipe.StreamedAttributes``). Without it the PNGs must hold class
indices (P or L mode).

Nothing is read before training: every pair is checked where it is decoded anyway, in the loader
workers (image readable, mask of the same size, classes below ``num_classes`` or 255, after the
label map; ``train.segmentation.dataset``), and a bad one fails the job naming the sample. The
built-in's four-channel layout (``train`` + ``train_annotation``) is folders of files and needs
File mode.

``load_channel`` picks: a Pipe-mode channel becomes a ``SegmentationStream``, any other a
checked ``Split`` (``train.segmentation.data.load_split``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from train.contract import INPUT_MODE_PIPE, TrainingEnv
from train.data.manifest import METADATA_SUFFIX
from train.data.pipe import (
    MANIFEST_HINT,
    FifoStream,
    StreamedAttributes,
    attribute_groups,
    attribute_json,
    check_image_record,
    check_record_wrapper,
    is_streamed_manifest,
    streamed_attributes,
)
from train.errors import UserError
from train.segmentation.data import Split, label_map_for, load_split
from train.segmentation.manifest import LABEL_REF_SUFFIX, ColorMap, color_map

log = logging.getLogger(__name__)

EXAMPLE = '["source-ref", "<job>-ref", "<job>-ref-metadata"]'


@dataclass(frozen=True)
class StreamedPair:
    """One manifest line as streamed: the photo's and the label PNG's bytes, and how errors
    name them (attribute, FIFO, sample number and byte offset)."""

    name: str
    image: bytes
    mask: bytes
    colors: ColorMap = ()
    image_name: str = ""
    mask_name: str = ""


class SegmentationStream(FifoStream[StreamedPair]):
    hint = MANIFEST_HINT

    def __init__(self, data_dir: Path, channel: str, attributes: StreamedAttributes,
                 table: np.ndarray, num_classes: int, *, wait_seconds: float, rank: int = 0,
                 num_replicas: int = 1) -> None:
        super().__init__(data_dir, channel, wait_seconds=wait_seconds, rank=rank,
                         num_replicas=num_replicas)
        if attributes.declared and not attributes.label.endswith(LABEL_REF_SUFFIX):
            raise UserError(
                f"channel {channel!r}: the label attribute {attributes.label!r} does not end in "
                f"'{LABEL_REF_SUFFIX}', so SageMaker would stream its JSON value, not a PNG "
                f"mask; semantic segmentation needs AttributeNames like {EXAMPLE}"
            )
        self.attributes = attributes
        self.metadata_index = attributes.index_of(attributes.label + METADATA_SUFFIX)
        self.table = table
        self.num_classes = num_classes

    def _samples(self, fh: BinaryIO, source: str) -> Iterator[StreamedPair]:
        attributes = self.attributes
        label_index = attributes.label_index
        for number, where, group in attribute_groups(fh, source, self.channel, attributes):
            if number == 0:
                check_image_record(group[0], attributes, where)
            colors: ColorMap = ()
            if self.metadata_index is not None:
                name = attributes.names[self.metadata_index]
                colors = color_map(attribute_json(group[self.metadata_index], name, where),
                                   where)
            yield StreamedPair(f"{source} sample {number}", group[0], group[label_index],
                               colors, image_name=f"{attributes.image!r} of {where}",
                               mask_name=f"{attributes.label!r} of {where}")


def open_stream(env: TrainingEnv, split: str, num_classes: int, wait_seconds: float,
                attribute_names: str | None = None, shard: tuple[int, int] = (0, 1)
                ) -> SegmentationStream:
    config = env.channels.get(split)
    if not (is_streamed_manifest(config) or (config is not None and config.attribute_names)):
        raise UserError(
            f"channel {split!r} uses Pipe input mode with RecordWrapperType="
            f"{config.record_wrapper_type if config else None!r}: in Pipe mode semantic "
            "segmentation streams a Ground Truth augmented manifest (S3DataType "
            f"AugmentedManifestFile, AttributeNames like {EXAMPLE}, RecordWrapperType="
            f"'RecordIO'); folders of images and masks ({split} + {split}_annotation) need "
            "input_mode='File'"
        )
    check_record_wrapper(split, config.record_wrapper_type if config else None)
    attributes = streamed_attributes(split, config, attribute_names)
    log.info("channel %s: streamed augmented manifest, %s", split, attributes.describe())
    table = label_map_for(env, split).lookup_table()
    return SegmentationStream(env.channel_dir(split).parent, split, attributes, table,
                              num_classes, wait_seconds=wait_seconds, rank=shard[0],
                              num_replicas=shard[1])


def load_channel(env: TrainingEnv, split: str, num_classes: int, *, required: bool,
                 wait_seconds: float, attribute_names: str | None = None,
                 shard: tuple[int, int] = (0, 1)) -> Split | SegmentationStream | None:
    """The channel's data: a stream in Pipe mode (keeping this rank's ``shard``), else every
    pair, checked (None when an optional channel is absent)."""
    if env.input_mode(split) == INPUT_MODE_PIPE:
        return open_stream(env, split, num_classes, wait_seconds, attribute_names, shard)
    return load_split(env, split, num_classes, required)
