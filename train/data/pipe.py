"""Pipe mode: a channel arrives as FIFOs ``input/data/<channel>_0``, ``<channel>_1``, ...

Each FIFO carries one full pass over the channel's S3 data; the next appears after the previous
one has been read to its end. The training process opens ``_0`` for its first pass over a
channel, ``_1`` for the second, and so on (a resumed job is a new process and starts at ``_0``
again). It waits for a FIFO to appear for at most ``pipe_wait_seconds``.

Two stream formats, both RecordIO-framed:

``RecordIOStream``
    the bytes of ``.rec`` files (``application/x-recordio``): one image record each.
``ManifestStream``
    an augmented manifest (``RecordWrapperType=RecordIO``): for every manifest line one record
    per attribute, in the order of the job's ``AttributeNames``. SageMaker sends the bytes of
    the S3 object an attribute ending in ``-ref`` points to (the image), and the JSON value of
    any other attribute (the label). Semantic segmentation's label PNGs arrive the same way
    (``train.segmentation.pipe``), through ``FifoStream`` and ``attribute_groups``.

SageMaker does not tell the container the ``AttributeNames`` (``inputdataconfig.json`` holds
only ``ContentType``, ``TrainingInputMode``, ``S3DistributionType`` and ``RecordWrapperType``),
so ``StreamedAttributes`` decides how records group into samples: the channel's own
``AttributeNames`` when our tools wrote them, else the hyperparameter ``attribute_names`` (the
list given to the SDK), else the built-in algorithms' two records: the image, then the label.

A regular file in place of a FIFO is read the same way (handy for tests).
"""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from train.contract import INPUT_MODE_PIPE, RECORD_WRAPPER_RECORDIO, ChannelConfig
from train.data.base import RawSample, Sample, StreamReader
from train.data.labels import LabelSpec
from train.data.manifest import label_value
from train.data.recordio import RecordIOError, iter_records, unpack_image
from train.errors import UserError

log = logging.getLogger(__name__)

READ_BUFFER = 1 << 20
POLL_SECONDS = 0.05
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RECORDIO_MAGIC_BYTES = b"\x0a\x23\xd7\xce"
# The built-in algorithms' streamed manifest: the image, then the label (placeholders: SageMaker
# does not tell the container the names).
DEFAULT_ATTRIBUTES = ("image", "label")


@dataclass(frozen=True)
class StreamedAttributes:
    """Which record of a streamed manifest line is what: ``names`` in stream order (the image
    first), ``label_index`` the label's position. ``declared``: the names are the user's (from
    AttributeNames or the hyperparameter), not placeholders."""

    names: tuple[str, ...]
    label_index: int = 1
    declared: bool = True

    @property
    def width(self) -> int:
        return len(self.names)

    @property
    def image(self) -> str:
        return self.names[0]

    @property
    def label(self) -> str:
        return self.names[self.label_index]

    def index_of(self, name: str) -> int | None:
        return self.names.index(name) if name in self.names else None

    def describe(self) -> str:
        if not self.declared:
            return "2 records per sample: the image, then the label"
        return (f"{self.width} records per sample {list(self.names)}, image {self.image!r}, "
                f"label {self.label!r}")


def parse_attribute_names(text: str | None) -> tuple[str, ...]:
    """The hyperparameter ``attribute_names``: ``source-ref,my-job`` or a JSON list."""
    if not text or not text.strip():
        return ()
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(f"hyperparameter attribute_names={text!r} is not a JSON list of "
                            "strings; write it as source-ref,my-job or [\"source-ref\", "
                            "\"my-job\"]")
        names = [v.strip() for v in value]
    else:
        names = [v.strip() for v in text.split(",")]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise UserError(f"hyperparameter attribute_names={text!r} must list distinct, non-empty "
                        "attribute names, the image reference first (e.g. source-ref,my-job)")
    return tuple(names)


def streamed_attributes(channel: str, config: ChannelConfig | None, names_hp: str | None,
                        label_attribute: str | None = None) -> StreamedAttributes:
    """How records group into samples on ``channel`` (see the module docstring); the label is
    ``label_attribute`` when given, else the second attribute."""
    names = (config.attribute_names if config else ()) or parse_attribute_names(names_hp)
    if not names:
        if label_attribute:
            raise UserError(f"channel {channel!r}: label_attribute={label_attribute!r} needs "
                            "the hyperparameter attribute_names (the AttributeNames given to "
                            "the SDK, in order) to find it in the stream")
        return StreamedAttributes(DEFAULT_ATTRIBUTES, 1, declared=False)
    if len(names) < 2:
        raise UserError(
            f"channel {channel!r}: AttributeNames {list(names)} must list the image reference "
            "first and the label attribute after it, e.g. [\"source-ref\", \"my-job\"] (set the "
            "hyperparameter attribute_names to the list given to the SDK)"
        )
    if label_attribute is None:
        return StreamedAttributes(names, 1)
    if label_attribute not in names[1:]:
        raise UserError(f"channel {channel!r}: label_attribute={label_attribute!r} is not one "
                        f"of the streamed attributes after the image {list(names[1:])}")
    return StreamedAttributes(names, names.index(label_attribute))


def is_streamed_manifest(config: ChannelConfig | None) -> bool:
    """SageMaker wraps each record in RecordIO only for augmented manifests in Pipe mode."""
    return (config is not None and config.input_mode == INPUT_MODE_PIPE
            and config.record_wrapper_type == RECORD_WRAPPER_RECORDIO)


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
            except GeneratorExit:
                # Abandoned before its end (the epoch ended on another rank first): read the
                # pass to its end, or the writer fails and the next FIFO never comes.
                while fh.read(READ_BUFFER):
                    pass
                raise

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
        if fh.peek(1)[:1] == b"{":  # type: ignore[attr-defined]
            raise UserError(
                f"channel {self.channel!r}: {source} starts with JSON, not RecordIO: an "
                "augmented manifest streamed without RecordWrapperType=RecordIO arrives as its "
                "raw lines. Set record_wrapping='RecordIO' on the channel (then every "
                "attribute arrives as its own record)"
            )
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


def attribute_groups(fh: BinaryIO, source: str, channel: str, attributes: StreamedAttributes
                     ) -> Iterator[tuple[int, str, list[bytes]]]:
    """One manifest line's records at a time: (sample number, where it starts, records)."""
    width = attributes.width
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
            f"{width} attribute records after sample {number}; expected "
            f"{attributes.describe()}). If the job streams more or fewer attributes, set the "
            "hyperparameter attribute_names to the AttributeNames given to the SDK"
        )


def check_image_record(payload: bytes, attributes: StreamedAttributes, where: str) -> None:
    """The first record of a sample must be the image's bytes, not RecordIO or JSON."""
    if payload.startswith(RECORDIO_MAGIC_BYTES):
        raise UserError(
            f"{where}: the record is itself RecordIO: RecordWrapperType=RecordIO wraps every "
            "S3 object, so a .rec file arrived as one record. Stream .rec files with "
            "RecordWrapperType='None', and augmented manifests with 'RecordIO'"
        )
    try:
        json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return
    raise UserError(
        f"{where}: the record for the image {attributes.image!r} is JSON ({payload[:16]!r}...), "
        "not image bytes; AttributeNames must list the image reference first (e.g. "
        "[\"source-ref\", \"my-job\"]), and the hyperparameter attribute_names must match them"
    )


class ManifestStream(_LabelledStream):
    hint = MANIFEST_HINT

    def __init__(self, data_dir: Path, channel: str, labels: LabelSpec, *,
                 attributes: StreamedAttributes, wait_seconds: float, rank: int = 0,
                 num_replicas: int = 1) -> None:
        super().__init__(data_dir, channel, labels, wait_seconds=wait_seconds, rank=rank,
                         num_replicas=num_replicas)
        self.attributes = attributes

    def _samples(self, fh: BinaryIO, source: str) -> Iterator[RawSample]:
        attributes = self.attributes
        for number, where, group in attribute_groups(fh, source, self.channel, attributes):
            if number == 0:
                check_image_record(group[0], attributes, where)
            label = group[attributes.label_index]
            if label.startswith(PNG_SIGNATURE):
                raise UserError(
                    f"{where}: the label record {attributes.label!r} is a PNG image, not a "
                    "class label: this is a semantic-segmentation manifest (its label "
                    "attribute ends in '-ref'). Train it as semantic segmentation (set the "
                    "hyperparameters algorithm and backbone), or stream the class-label "
                    "attribute instead"
                )
            value = _attribute_value(label, attributes.label, where)
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
            "the label attribute after it, and the hyperparameter attribute_names must match "
            "them"
        ) from None


def _attribute_value(payload: bytes, attribute: str, where: str) -> Any:
    return label_value(attribute_json(payload, attribute, where), attribute, where)
