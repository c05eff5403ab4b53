"""Semantic segmentation in Pipe mode: Ground Truth augmented manifests streamed by SageMaker.

With ``RecordWrapperType=RecordIO`` and ``AttributeNames`` like ``["source-ref", "cats-ref"]``
SageMaker writes, for every manifest line, one RecordIO record per attribute to the channel's
FIFO: the bytes of the S3 object each ``-ref`` attribute points to (the photo, then the label
PNG) and the JSON value of any other attribute. Listing ``"cats-ref-metadata"`` as a third
attribute streams Ground Truth's ``internal-color-map`` with each line, so colour label PNGs
become class ids as in File mode; without it the PNGs must hold class indices (P or L mode).

Nothing is read before training: every pair is checked as it streams past (image readable,
mask of the same size, classes below ``num_classes`` or 255, after the label map), in the
training process, and a bad one fails the job naming the sample. The built-in's four-channel
layout (``train`` + ``train_annotation``) is folders of files and needs File mode.

``load_channel`` picks: a Pipe-mode channel becomes a ``SegmentationStream``, any other a
checked ``Split`` (``train.segmentation.data.load_split``).
"""

from __future__ import annotations

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
    attribute_groups,
    attribute_json,
    check_attribute_names,
    check_record_wrapper,
)
from train.errors import UserError
from train.segmentation.data import Split, check_sample, label_map_for, load_split
from train.segmentation.manifest import LABEL_REF_SUFFIX, ColorMap, color_map

EXAMPLE = '["source-ref", "<job>-ref", "<job>-ref-metadata"]'


@dataclass(frozen=True)
class StreamedPair:
    """One manifest line as streamed: the photo's and the label PNG's bytes."""

    name: str
    image: bytes
    mask: bytes
    colors: ColorMap = ()


class SegmentationStream(FifoStream[StreamedPair]):
    hint = MANIFEST_HINT

    def __init__(self, data_dir: Path, channel: str, attribute_names: tuple[str, ...],
                 table: np.ndarray, num_classes: int, *, wait_seconds: float) -> None:
        super().__init__(data_dir, channel, wait_seconds=wait_seconds)
        check_attribute_names(channel, attribute_names)
        label = attribute_names[1]
        if not label.endswith(LABEL_REF_SUFFIX):
            raise UserError(
                f"channel {channel!r}: the label attribute {label!r} does not end in "
                f"'{LABEL_REF_SUFFIX}', so SageMaker would stream its JSON value, not a PNG "
                f"mask; semantic segmentation needs AttributeNames like {EXAMPLE}"
            )
        metadata = label + METADATA_SUFFIX
        self.attribute_names = attribute_names
        self.metadata_index = (attribute_names.index(metadata)
                               if metadata in attribute_names else None)
        self.table = table
        self.num_classes = num_classes

    def _samples(self, fh: BinaryIO, source: str) -> Iterator[StreamedPair]:
        image_name, label_name = self.attribute_names[:2]
        for number, where, group in attribute_groups(fh, source, self.channel,
                                                     self.attribute_names):
            colors: ColorMap = ()
            if self.metadata_index is not None:
                name = self.attribute_names[self.metadata_index]
                colors = color_map(attribute_json(group[self.metadata_index], name, where),
                                   where)
            check_sample(group[0], group[1], colors, self.table, self.num_classes,
                         image_name=f"{image_name!r} of {where}",
                         mask_name=f"{label_name!r} of {where}")
            yield StreamedPair(f"{source} sample {number}", group[0], group[1], colors)


def open_stream(env: TrainingEnv, split: str, num_classes: int, wait_seconds: float
                ) -> SegmentationStream:
    config = env.channels.get(split)
    if config is None or not config.attribute_names:
        raise UserError(
            f"channel {split!r} uses Pipe input mode without AttributeNames: in Pipe mode "
            "semantic segmentation streams a Ground Truth augmented manifest (AttributeNames "
            f"like {EXAMPLE}, RecordWrapperType='RecordIO'); folders of images and masks "
            f"({split} + {split}_annotation) need input_mode='File'"
        )
    check_record_wrapper(split, config.record_wrapper_type)
    table = label_map_for(env, split).lookup_table()
    return SegmentationStream(env.channel_dir(split).parent, split, config.attribute_names,
                              table, num_classes, wait_seconds=wait_seconds)


def load_channel(env: TrainingEnv, split: str, num_classes: int, *, required: bool,
                 wait_seconds: float) -> Split | SegmentationStream | None:
    """The channel's data: a stream in Pipe mode, else every pair, checked (None when an
    optional channel is absent)."""
    if env.input_mode(split) == INPUT_MODE_PIPE:
        return open_stream(env, split, num_classes, wait_seconds)
    return load_split(env, split, num_classes, required)
