"""Pipe mode: a channel arrives as FIFOs ``input/data/<channel>_0``, ``<channel>_1``, ...

Each FIFO carries one full pass over the channel's S3 data; the next appears after the previous
one has been read to its end. The training process opens ``_0`` for its first pass over a
channel, ``_1`` for the second, and so on (a resumed job is a new process and starts at ``_0``
again). It waits for a FIFO to appear for at most ``pipe_wait_seconds``.

Two stream formats, both RecordIO-framed:

``RecordIOStream``
    the bytes of ``.rec`` files (``application/x-recordio``): one image record each.
``ManifestStream``
    an augmented manifest with ``RecordWrapperType=RecordIO``: for every manifest line one
    record per attribute, in ``AttributeNames`` order. SageMaker sends the bytes of the S3
    object an attribute ending in ``-ref`` points to (the image), and the JSON value of any
    other attribute (the label). Semantic segmentation's label PNGs arrive the same way
    (``train.segmentation.pipe``), through ``FifoStream`` and ``attribute_groups``.

A regular file in place of a FIFO is read the same way (handy for tests).
"""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from train.contract import RECORD_WRAPPER_RECORDIO
from train.data.base import RawSample, Sample, StreamReader
from train.data.labels import LabelSpec
from train.data.manifest import label_value
from train.data.recordio import RecordIOError, iter_records, unpack_image
from train.errors import UserError

log = logging.getLogger(__name__)

READ_BUFFER = 1 << 20
POLL_SECONDS = 0.05


def fifo_path(data_dir: Path, channel: str, pass_index: int) -> Path:
    return data_dir / f"{channel}_{pass_index}"


def open_fifo(path: Path, channel: str, wait_seconds: float) -> BinaryIO:
    """Wait (bounded) for ``path`` to appear, then open it for reading."""
    deadline = time.monotonic() + wait_seconds
    while not path.exists():
        if time.monotonic() >= deadline:
            raise UserError(
                f"Pipe mode: {path} did not appear within pipe_wait_seconds={wait_seconds:g}; "
                f"channel {channel!r} is declared with TrainingInputMode=Pipe but nothing feeds "
                "it. On SageMaker check the channel's S3 location; locally run the job through "
                "local_test/pipe_emulator.py, or raise pipe_wait_seconds"
            )
        time.sleep(POLL_SECONDS)
    mode = path.stat().st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        raise UserError(f"Pipe mode: {path} is neither a FIFO nor a file")
    log.info("channel %s: reading %s", channel, path.name)
    return open(path, "rb", buffering=READ_BUFFER)


class FifoStream(StreamReader[Sample]):
    """A channel read pass by pass from its FIFOs; subclasses turn the bytes into samples.

    With ``num_replicas`` > 1 each rank keeps every ``num_replicas``-th sample."""

    #: Appended to a framing error's message: the likely cause for this kind of stream.
    hint = ""

    def __init__(self, data_dir: Path, channel: str, *, wait_seconds: float, rank: int = 0,
                 num_replicas: int = 1) -> None:
        self.data_dir = data_dir
        self.channel = channel
        self.wait_seconds = wait_seconds
        self.rank = rank
        self.num_replicas = num_replicas

    def read_pass(self, pass_index: int) -> Iterator[Sample]:
        path = fifo_path(self.data_dir, self.channel, pass_index)
        with open_fifo(path, self.channel, self.wait_seconds) as fh:
            try:
                for number, sample in enumerate(self._samples(fh, path.name)):
                    if number % self.num_replicas == self.rank:
                        yield sample
            except RecordIOError as exc:
                raise UserError(f"channel {self.channel!r}: {exc}. {self.hint}") from None

    def _samples(self, fh: BinaryIO, source: str) -> Iterator[Sample]:
        raise NotImplementedError


class _LabelledStream(FifoStream[RawSample]):
    """Classification samples: image bytes and a class target."""

    def __init__(self, data_dir: Path, channel: str, labels: LabelSpec, *,
                 wait_seconds: float, rank: int = 0, num_replicas: int = 1) -> None:
        if labels.num_classes is None:
            raise UserError(
                f"channel {channel!r} uses Pipe mode, where the data is not read before "
                "training starts; set the hyperparameter num_classes"
            )
        super().__init__(data_dir, channel, wait_seconds=wait_seconds, rank=rank,
                         num_replicas=num_replicas)
        self.labels = labels
        self.class_names = [str(i) for i in range(labels.num_classes)]


class RecordIOStream(_LabelledStream):
    hint = ("Point the channel at the .rec file(s) only: in Pipe mode every object under the "
            "S3 prefix is streamed, .idx and .lst files included")

    def _samples(self, fh: BinaryIO, source: str) -> Iterator[RawSample]:
        for offset, payload in iter_records(fh, source):
            record = unpack_image(payload, source, offset)
            where = f"{source}: record id {record.id} at byte offset {offset}"
            yield RawSample(name=f"{source} record {record.id}", data=record.image,
                            target=self.labels.target(record.label, where))


MANIFEST_HINT = ("An augmented manifest needs RecordWrapperType=RecordIO so that each "
                 "attribute arrives as its own record")


def check_record_wrapper(channel: str, wrapper: str | None) -> None:
    if wrapper != RECORD_WRAPPER_RECORDIO:
        raise UserError(
            f"channel {channel!r} streams an augmented manifest with RecordWrapperType="
            f"{wrapper!r}; set RecordWrapperType='RecordIO' so that the image and the label "
            "arrive as separate records"
        )


def check_attribute_names(channel: str, attribute_names: tuple[str, ...]) -> None:
    if len(attribute_names) < 2:
        raise UserError(
            f"channel {channel!r}: AttributeNames {list(attribute_names)} must list the "
            "image reference first and the label attribute second, e.g. "
            '["source-ref", "my-labeling-job"]'
        )


def attribute_groups(fh: BinaryIO, source: str, channel: str, attribute_names: tuple[str, ...]
                     ) -> Iterator[tuple[int, str, list[bytes]]]:
    """One manifest line's records at a time: (sample number, where it starts, records)."""
    width = len(attribute_names)
    group: list[bytes] = []
    start = 0
    number = 0
    for offset, payload in iter_records(fh, source):
        if not group:
            start = offset
        group.append(payload)
        if len(group) < width:
            continue
        yield number, f"{source}: sample {number} (byte offset {start})", group
        group = []
        number += 1
    if group:
        raise UserError(
            f"channel {channel!r}: {source} ended inside a sample ({len(group)} of "
            f"{width} attribute records after sample {number}); every manifest line must "
            f"have all of AttributeNames {list(attribute_names)}"
        )


class ManifestStream(_LabelledStream):
    hint = MANIFEST_HINT

    def __init__(self, data_dir: Path, channel: str, labels: LabelSpec, *,
                 attribute_names: tuple[str, ...], wait_seconds: float, rank: int = 0,
                 num_replicas: int = 1) -> None:
        super().__init__(data_dir, channel, labels, wait_seconds=wait_seconds, rank=rank,
                         num_replicas=num_replicas)
        check_attribute_names(channel, attribute_names)
        self.attribute_names = attribute_names

    def _samples(self, fh: BinaryIO, source: str) -> Iterator[RawSample]:
        label_name = self.attribute_names[1]
        for number, where, group in attribute_groups(fh, source, self.channel,
                                                     self.attribute_names):
            value = _attribute_value(group[1], label_name, where)
            yield RawSample(name=f"{source} sample {number}", data=group[0],
                            target=self.labels.target(value, where))


def attribute_json(payload: bytes, attribute: str, where: str) -> Any:
    """The record of an attribute whose name does not end in ``-ref``: its JSON value."""
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(
            f"{where}: the record for attribute {attribute!r} is not JSON "
            f"({payload[:16]!r}...); AttributeNames must list the image reference first and "
            "the label attribute second"
        ) from None


def _attribute_value(payload: bytes, attribute: str, where: str) -> Any:
    return label_value(attribute_json(payload, attribute, where), attribute, where)
