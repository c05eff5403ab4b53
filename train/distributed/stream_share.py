"""Pipe mode with several processes on one instance: one FIFO, several readers.

A FIFO can be read by one process only. The host's first process reads each pass and hands
every sample to the process it belongs to; the others receive theirs. Samples are dealt in
rounds, one per process of the host, over a gloo group of the host's processes (a scatter per
round), so that every process pulls them at the same pace; the end of the pass is a round of
``None``. Which process a sample belongs to follows the channel's distribution, as File mode's
samplers do: ``FullyReplicated`` data arrives whole on every host, so sample ``k`` is global
rank ``k % world``'s (each host keeps its processes' share); ``ShardedByS3Key`` data is already
this host's share, so sample ``k`` is local rank ``k % local_world``'s. When the pass does
not split evenly, the last rounds tell the processes that have nothing left ``NOTHING``
(skipped), never ``None``, which each process must receive exactly once per pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from train.contract import DISTRIBUTION_SHARDED
from train.data.base import StreamReader


class Nothing:
    """No sample for this process in this round (the pass's share ran out unevenly)."""


NOTHING = Nothing()


class SharedStream(StreamReader[Any]):
    def __init__(self, inner: StreamReader[Any], dist: Any, distribution: str) -> None:
        self.inner = inner
        self.class_names = inner.class_names
        self.dist = dist
        self.sharded = distribution == DISTRIBUTION_SHARDED

    def _owner(self, number: int) -> int | None:
        """The local rank sample ``number`` belongs to, or None (another host's)."""
        dist = self.dist
        if self.sharded:
            return number % dist.local_world
        local = number % dist.world - dist.host_index * dist.local_world
        return local if 0 <= local < dist.local_world else None

    def read_pass(self, pass_index: int) -> Iterator[Any]:
        if self.dist.local_rank == 0:
            yield from self._deal(pass_index)
            return
        while (sample := self.dist.receive_from_host_leader()) is not None:
            if not isinstance(sample, Nothing):
                yield sample

    def _deal(self, pass_index: int) -> Iterator[Any]:
        waiting: list[list[Any]] = [[] for _ in range(self.dist.local_world)]
        for number, sample in enumerate(self.inner.read_pass(pass_index)):
            owner = self._owner(number)
            if owner is None:
                continue
            waiting[owner].append(sample)
            while all(waiting):  # a full round: one sample for every process of the host
                mine, *others = (queue.pop(0) for queue in waiting)
                self.dist.send_to_host_processes(others)
                yield mine
        # The pass ended: what is left, then a round of None for everybody.
        while any(waiting):
            round_ = [queue.pop(0) if queue else NOTHING for queue in waiting]
            self.dist.send_to_host_processes(round_[1:])
            if not isinstance(round_[0], Nothing):
                yield round_[0]
        self.dist.send_to_host_processes([None] * (self.dist.local_world - 1))
