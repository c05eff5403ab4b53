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
    record per attribute, in ``AttributeNames`` order; the image reference's record holds the
    image bytes, the label attribute's record holds its JSON value.

A regular file in place of a FIFO is read the same way (handy for tests).
"""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from train.data.base import RawSample, StreamReader
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


class _PipeStream(StreamReader):
    def __init__(self, data_dir: Path, channel: str, labels: LabelSpec, *,
                 wait_seconds: float, rank: int = 0, num_replicas: int = 1) -> None:
        if labels.num_classes is None:
            raise UserError(
                f"channel {channel!r} uses Pipe mode, where the data is not read before "
                "training starts; set the hyperparameter num_classes"
            )
        self.data_dir = data_dir
        self.channel = channel
        self.labels = labels
        self.wait_seconds = wait_seconds
        self.rank = rank
        self.num_replicas = num_replicas
        self.class_names = [str(i) for i in range(labels.num_classes)]

    def read_pass(self, pass_index: int) -> Iterator[RawSample]:
        path = fifo_path(self.data_dir, self.channel, pass_index)
        with open_fifo(path, self.channel, self.wait_seconds) as fh:
            try:
                for number, sample in enumerate(self._samples(fh, path.name)):
                    if number % self.num_replicas == self.rank:
                        yield sample
            except RecordIOError as exc:
                raise UserError(f"channel {self.channel!r}: {exc}. {self._hint}") from None

    _hint = ""

    def _samples(self, fh: BinaryIO, source: str) -> Iterator[RawSample]:
        raise NotImplementedError


class RecordIOStream(_PipeStream):
    _hint = ("Point the channel at the .rec file(s) only: in Pipe mode every object under the "
             "S3 prefix is streamed, .idx and .lst files included")

    def _samples(self, fh: BinaryIO, source: str) -> Iterator[RawSample]:
        for offset, payload in iter_records(fh, source):
            record = unpack_image(payload, source, offset)
            where = f"{source}: record id {record.id} at byte offset {offset}"
            yield RawSample(name=f"{source} record {record.id}", data=record.image,
                            target=self.labels.target(record.label, where))


class ManifestStream(_PipeStream):
    _hint = ("An augmented manifest needs RecordWrapperType=RecordIO so that each attribute "
             "arrives as its own record")

    def __init__(self, data_dir: Path, channel: str, labels: LabelSpec, *,
                 attribute_names: tuple[str, ...], wait_seconds: float, rank: int = 0,
                 num_replicas: int = 1) -> None:
        super().__init__(data_dir, channel, labels, wait_seconds=wait_seconds, rank=rank,
                         num_replicas=num_replicas)
        if len(attribute_names) < 2:
            raise UserError(
                f"channel {channel!r}: AttributeNames {list(attribute_names)} must list the "
                "image reference first and the label attribute second, e.g. "
                '["source-ref", "my-labeling-job"]'
            )
        self.attribute_names = attribute_names

    def _samples(self, fh: BinaryIO, source: str) -> Iterator[RawSample]:
        width = len(self.attribute_names)
        label_name = self.attribute_names[1]
        group: list[bytes] = []
        start = 0
        number = 0
        for offset, payload in iter_records(fh, source):
            if not group:
                start = offset
            group.append(payload)
            if len(group) < width:
                continue
            where = f"{source}: sample {number} (byte offset {start})"
            value = _attribute_value(group[1], label_name, where)
            yield RawSample(name=f"{source} sample {number}", data=group[0],
                            target=self.labels.target(value, where))
            group = []
            number += 1
        if group:
            raise UserError(
                f"channel {self.channel!r}: {source} ended inside a sample ({len(group)} of "
                f"{width} attribute records after sample {number}); every manifest line must "
                f"have all of AttributeNames {list(self.attribute_names)}"
            )


def _attribute_value(payload: bytes, attribute: str, where: str):
    try:
        text = payload.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(
            f"{where}: the record for label attribute {attribute!r} is not JSON "
            f"({payload[:16]!r}...); AttributeNames must list the image reference first and "
            "the label attribute second"
        ) from None
    return label_value(value, attribute, where)
