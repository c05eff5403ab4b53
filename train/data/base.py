"""The reader interface every dataset format implements.

A reader knows how to list a channel's samples and fetch one sample's raw bytes and label;
decoding and transforms happen once, in ``train.data.dataset``. Readers are pickled into
DataLoader worker processes, so they hold paths and small indexes, never open files.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class RawSample:
    name: str  # shown in warnings: a path, record id or manifest line
    data: bytes
    target: int


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
    def targets(self) -> list[int]:
        """Every sample's label, without reading image bytes (for counts and checks)."""
