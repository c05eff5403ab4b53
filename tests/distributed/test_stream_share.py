"""SharedStream's dealing, with the host group's scatter stood in for by queues: every sample
reaches the process it belongs to once, and each pass ends cleanly for every process, also when
a pass does not split evenly (nothing left over for the next pass)."""

from __future__ import annotations

import pickle
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from train.contract import DISTRIBUTION_FULLY_REPLICATED, DISTRIBUTION_SHARDED
from train.data.base import StreamReader
from train.distributed.stream_share import SharedStream


class Numbers(StreamReader[int]):
    class_names = None

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts

    def read_pass(self, pass_index: int) -> Iterator[int]:
        yield from range(1000 * pass_index, 1000 * pass_index + self.counts[pass_index])


@dataclass
class QueueHost:
    """One host's processes; what the leader scatters goes through a queue per process,
    pickled as gloo pickles it."""

    local_world: int
    world: int
    host_index: int = 0
    inboxes: list[queue.Queue] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.inboxes = [queue.Queue() for _ in range(self.local_world)]

    def rank(self, local_rank: int) -> Any:
        host = self

        class Rank:
            def __init__(self) -> None:
                self.local_rank, self.local_world = local_rank, host.local_world
                self.world, self.host_index = host.world, host.host_index

            def send_to_host_processes(self, items: list[Any]) -> None:
                assert len(items) == host.local_world - 1
                for inbox, item in zip(host.inboxes[1:], items, strict=True):
                    inbox.put(pickle.dumps(item))

            def receive_from_host_leader(self) -> Any:
                return pickle.loads(host.inboxes[local_rank].get(timeout=10))

        return Rank()


def _run(counts: list[int], local_world: int, distribution: str, world: int | None = None,
         host_index: int = 0) -> tuple[list[list[list[int]]], QueueHost]:
    """Every pass on every process of one host; [pass][local rank] → samples."""
    host = QueueHost(local_world, world or local_world, host_index)
    got: list[list[list[int]]] = [[[] for _ in range(local_world)] for _ in counts]

    def process(local_rank: int) -> None:
        stream = SharedStream(Numbers(counts), host.rank(local_rank), distribution)
        for index in range(len(counts)):
            got[index][local_rank] = list(stream.read_pass(index))

    threads = [threading.Thread(target=process, args=(r,)) for r in range(local_world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return got, host


@pytest.mark.parametrize("counts", [[160, 160], [161, 7], [5, 0, 3], [1, 2]])
@pytest.mark.parametrize("local_world", [2, 3])
def test_every_sample_once_and_no_message_left_over(counts, local_world):
    got, host = _run(counts, local_world, DISTRIBUTION_SHARDED)
    for index, count in enumerate(counts):
        samples = range(1000 * index, 1000 * index + count)
        for local_rank in range(local_world):
            assert got[index][local_rank] == [s for s in samples
                                              if (s - 1000 * index) % local_world == local_rank]
    assert all(inbox.empty() for inbox in host.inboxes)


def test_replicated_data_keeps_this_hosts_share_of_every_rank():
    # Two hosts of two processes: host 1 keeps samples 2 and 3 of every 4 (global ranks 2, 3).
    got, host = _run([9], 2, DISTRIBUTION_FULLY_REPLICATED, world=4, host_index=1)
    assert got[0] == [[2, 6], [3, 7]]
    assert all(inbox.empty() for inbox in host.inboxes)
