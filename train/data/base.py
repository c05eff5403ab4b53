"""The reader interfaces every dataset format implements.

A reader knows how to list a channel's samples and fetch one sample's raw bytes and label;
decoding and transforms happen once, in ``train.data.dataset``. Two kinds:

``Reader``
    Random access (File and FastFile mode): folders, ``.lst`` lists, ``.rec`` files with or
    without ``.idx``, manifests. Pickled into DataLoader worker processes, so it holds paths
    and small indexes, never open files.
``StreamReader``
    One pass at a time, in order (Pipe mode): each call to ``passes`` reads the channel's next
    FIFO to its end. It runs in the training process only; the samples it yields travel to the
    worker processes for decoding (see ``train.data.stream``).

A target is a class index (single-label) or a sorted tuple of class indexes (multi-label).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

Target = int | tuple[int, ...]
Sample = TypeVar("Sample")  # what a stream yields: a RawSample, or an image/mask pair


@dataclass(frozen=True)
class RawSample:
    name: str  # shown in warnings: a path, record id or manifest line
    data: bytes
    target: Target


@dataclass(frozen=True)
class Streamed(Generic[Sample]):
    """A stream's sample at ``position`` in its pass, handed to the dataset as an "index"."""

    position: int
    sample: Sample


class Reader(ABC):
    """Random-access samples of one channel."""

    #: Class names in label order when the format carries them (folders do), else None.
    class_names: list[str] | None = None

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, index: int) -> RawSample:
        """Return sample ``index``; raise ``OSError`` if its bytes cannot be read."""

    @abstractmethod
    def targets(self) -> list[Target]:
        """Every sample's label, without reading image bytes (for counts and checks)."""


class FileListReader(Reader):
    """A reader over a list of image files below ``root`` with one target each.

    Subclasses (``.lst`` lists, manifests) fill ``root``, ``_paths`` (relative to ``root``,
    already checked to stay inside it) and ``_targets`` in their ``__init__``.
    """

    root: Path
    _paths: list[str]
    _targets: list[Target]

    def __len__(self) -> int:
        return len(self._paths)

    def read(self, index: int) -> RawSample:
        relative = self._paths[index]
        return RawSample(name=relative, data=(self.root / relative).read_bytes(),
                         target=self._targets[index])

    def targets(self) -> list[Target]:
        return list(self._targets)


class StreamReader(ABC, Generic[Sample]):
    """Samples of one channel that can only be read in order, one pass after another."""

    class_names: list[str] | None = None

    @abstractmethod
    def read_pass(self, pass_index: int) -> Iterator[Sample]:
        """Yield pass ``pass_index`` (0, 1, ... in this process) from its first sample to its
        last; raise ``UserError`` for data that cannot be parsed."""
