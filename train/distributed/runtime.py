"""The collectives the training engine uses, for one process (``SINGLE``) or a process group.

The engine is written once against ``Dist``: in a one-process job every method is the
identity; in a distributed job (``ProcessGroup``) they are torch.distributed collectives over
NCCL (GPU) or gloo (CPU). What the engine needs:

* ``agree_step``: one small all-reduce per training step, so that every rank takes the same
  steps: all ranks stop the epoch when any has run out of batches (no rank ever waits in a
  collective for a peer that has finished), all stop together when any was asked to stop
  (SIGTERM), and all skip a step whose batch is too small on any rank (BatchNorm, bad images);
* ``sum`` of metric sums, so validation and test metrics cover every sample;
* ``broadcast`` (rank 0's checkpoint and seed) and ``all_gather`` (class names of sharded data).

A rank that fails announces it in the rendezvous store, and every rank runs a watchdog thread
that beats a heartbeat and watches its peers': a peer's announced failure or a silent peer
(no heartbeat for ``DEAD_AFTER_SECONDS``) ends this rank within seconds, naming the peer, instead
of leaving it blocked in a collective until the job's MaxRuntime.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from torch import nn

from train.contract import DISTRIBUTION_SHARDED

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
DEAD_AFTER_SECONDS = 30.0
FAILED_KEY = "sm-vision/failed/"
DONE_KEY = "sm-vision/done/"
HEARTBEAT_KEY = "sm-vision/heartbeat/"
SEEN_KEY = "sm-vision/seen-failure/"
# How long rank 0 (it hosts the store) waits, when it fails, for its peers to read why.
FAILURE_LINGER_SECONDS = 30.0


@dataclass(frozen=True)
class StepAgreement:
    proceed: bool  # every rank has a batch
    stop: bool  # some rank was asked to stop
    samples: int  # samples in this step, all ranks together
    skip: bool  # some rank's batch is too small to train on


@dataclass(frozen=True)
class PeerFailure:
    """What a failed rank announced (or what its silence means)."""

    rank: int
    host: str
    kind: str  # ClientError, AlgorithmError, Interrupted
    message: str

    def describe(self) -> str:
        return f"host {self.host} (rank {self.rank}) {self.message}"


class Dist:
    """One process: nothing to agree on."""

    enabled = False
    rank = 0
    world = 1
    local_rank = 0
    local_world = 1
    host_index = 0

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device or torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, distribution: str) -> tuple[int, int]:
        """(index, count) of this rank's share of a channel: ``FullyReplicated`` data is the
        same on every host, so all ranks split it; ``ShardedByS3Key`` data is already split
        between hosts, so only the host's own processes split it."""
        if distribution == DISTRIBUTION_SHARDED:
            return self.local_rank, self.local_world
        return self.rank, self.world

    def agree_step(self, has_batch: bool, stop: bool, samples: int, too_small: bool
                   ) -> StepAgreement:
        return StepAgreement(has_batch, stop, samples, too_small)

    def any(self, flag: bool) -> bool:
        return flag

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def broadcast(self, value: Any) -> Any:
        return value

    def all_gather(self, value: Any) -> list[Any]:
        return [value]

    def barrier(self) -> None:
        pass

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def announce_failure(self, kind: str, message: str) -> None:
        pass

    def finish(self) -> None:
        """The job is done: wait for every rank, then leave the group."""

    def close(self) -> None:
        pass


class ProcessGroup(Dist):
    enabled = True

    def __init__(self, *, rank: int, world: int, local_rank: int, local_world: int,
                 master_addr: str, master_port: int, hosts: tuple[str, ...], cuda: bool,
                 timeout: float, on_peer_failure: Callable[[PeerFailure], None]) -> None:
        import torch.distributed as dist

        device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        super().__init__(device)
        self.rank, self.world = rank, world
        self.local_rank, self.local_world = local_rank, local_world
        self.host_index = rank // local_world
        self.hosts = hosts
        self._dist = dist
        self.store = dist.TCPStore(master_addr, master_port, world, is_master=rank == 0,
                                   timeout=timedelta(seconds=timeout))
        dist.init_process_group("nccl" if cuda else "gloo", store=self.store, rank=rank,
                                world_size=world, timeout=timedelta(seconds=timeout))
        # Object collectives (checkpoints, class names) go through gloo on the CPU, also
        # beside NCCL.
        self._cpu_group = dist.new_group(backend="gloo") if cuda else None
        # The host's processes, for handing on Pipe-mode samples (stream_share).
        self._host_group = None
        if local_world > 1:
            self._host_group, _ = dist.new_subgroups_by_enumeration(
                [list(range(h * local_world, (h + 1) * local_world))
                 for h in range(world // local_world)], backend="gloo")
        self._watchdog = Watchdog(self.store.clone(), rank, world, self.host_of,
                                  on_peer_failure)
        self._watchdog.start()
        log.info("rank %d of %d (host %s, local rank %d of %d) joined the process group",
                 rank, world, hosts[self.host_index], local_rank, local_world)

    def host_of(self, rank: int) -> str:
        return self.hosts[rank // self.local_world]

    def agree_step(self, has_batch: bool, stop: bool, samples: int, too_small: bool
                   ) -> StepAgreement:
        votes = torch.tensor([float(has_batch), float(stop), float(samples), float(too_small)],
                             dtype=torch.float64, device=self.device)
        self._dist.all_reduce(votes)
        total = votes.tolist()
        return StepAgreement(proceed=total[0] == self.world, stop=total[1] > 0,
                             samples=int(total[2]), skip=total[3] > 0)

    def any(self, flag: bool) -> bool:
        vote = torch.tensor([float(flag)], dtype=torch.float64, device=self.device)
        self._dist.all_reduce(vote)
        return bool(vote.item() > 0)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        reduced = values.to(self.device, dtype=torch.float64).clone()
        self._dist.all_reduce(reduced)
        return reduced.cpu()

    def broadcast(self, value: Any) -> Any:
        box = [value if self.rank == 0 else None]
        self._dist.broadcast_object_list(box, src=0, group=self._cpu_group)
        return box[0]

    def all_gather(self, value: Any) -> list[Any]:
        out: list[Any] = [None] * self.world
        self._dist.all_gather_object(out, value, group=self._cpu_group)
        return out

    def barrier(self) -> None:
        self._dist.barrier(group=self._cpu_group)

    def send_to_host_processes(self, items: list[Any]) -> None:
        """From the host's first process: ``items[i]`` to its process ``i + 1``."""
        self._dist.scatter_object_list([None], [None, *items], group=self._host_group,
                                       group_src=0)

    def receive_from_host_leader(self) -> Any:
        out: list[Any] = [None]
        self._dist.scatter_object_list(out, None, group=self._host_group, group_src=0)
        return out[0]

    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def announce_failure(self, kind: str, message: str) -> None:
        """Tell the peers (their watchdogs) why this rank is ending; stop watching them first:
        how they react is not this rank's outcome."""
        self._watchdog.stop()
        try:
            self.store.set(f"{FAILED_KEY}{self.rank}", json.dumps(
                {"kind": kind, "message": message.splitlines()[0][:500]}))
        except Exception:  # the store's host may be the one that is gone
            log.warning("could not announce this rank's failure to its peers")

    def wait_for_peers_to_see_failure(self) -> None:
        """On rank 0, whose store the peers read, after ``announce_failure``: wait until each
        has seen it or ended before leaving (else they could only report that rank 0 stopped
        answering)."""
        if self.rank != 0:
            return
        waiting = set(range(1, self.world))
        deadline = time.monotonic() + FAILURE_LINGER_SECONDS
        while waiting and time.monotonic() < deadline:
            try:
                waiting = {r for r in waiting if not any(
                    self.store.check([f"{key}{r}"]) for key in (FAILED_KEY, DONE_KEY, SEEN_KEY))}
            except Exception:
                return
            time.sleep(0.2)

    def acknowledge_failure(self) -> None:
        """The watchdog saw a peer's failure: rank 0 need not wait for this rank any longer."""
        with contextlib.suppress(Exception):  # the store's host may be the one that is gone
            self.store.set(f"{SEEN_KEY}{self.rank}", "1")

    def finish(self) -> None:
        # Rank 0 hosts the store: nobody leaves before everybody is done.
        self.store.set(f"{DONE_KEY}{self.rank}", "1")
        self.barrier()
        self.close()

    def close(self) -> None:
        self._watchdog.stop()
        if self._dist.is_initialized():
            self._dist.destroy_process_group()


class Watchdog(threading.Thread):
    """Beat this rank's heartbeat; call ``on_peer_failure`` once when a peer announces a
    failure, stops beating, or the store (on the master host) stops answering."""

    def __init__(self, store: Any, rank: int, world: int, host_of: Callable[[int], str],
                 on_peer_failure: Callable[[PeerFailure], None]) -> None:
        super().__init__(name="sm-vision-watchdog", daemon=True)
        self.store, self.rank, self.world = store, rank, world
        self.host_of = host_of
        self.on_peer_failure = on_peer_failure
        self._stopped = threading.Event()
        self._seen: dict[int, tuple[bytes, float]] = {}

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        beats = 0
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            beats += 1
            try:
                self.store.set(f"{HEARTBEAT_KEY}{self.rank}", str(beats))
                failure = self._check_peers()
            except Exception as exc:
                failure = PeerFailure(0, self.host_of(0), "AlgorithmError",
                                      f"stopped answering (its rendezvous store: {exc})")
            if failure is not None and not self._stopped.is_set():
                self.on_peer_failure(failure)
                return

    def _check_peers(self) -> PeerFailure | None:
        now = time.monotonic()
        peers = [r for r in range(self.world) if r != self.rank]
        failed = [r for r in peers if self.store.check([f"{FAILED_KEY}{r}"])]
        if failed:
            raw = json.loads(self.store.get(f"{FAILED_KEY}{failed[0]}"))
            verb = "was stopped" if raw["kind"] == "Interrupted" else "failed"
            return PeerFailure(failed[0], self.host_of(failed[0]), raw["kind"],
                               f"{verb}: {raw['message']}")
        for r in peers:
            key = f"{HEARTBEAT_KEY}{r}"
            if self.store.check([f"{DONE_KEY}{r}"]) or not self.store.check([key]):
                continue  # not started beating yet: the rendezvous has its own timeout
            value = self.store.get(key)
            previous = self._seen.get(r)
            if previous is None or previous[0] != value:
                self._seen[r] = (value, now)
            elif now - previous[1] > DEAD_AFTER_SECONDS:
                return PeerFailure(r, self.host_of(r), "AlgorithmError",
                                   f"stopped answering (no heartbeat for "
                                   f"{DEAD_AFTER_SECONDS:.0f} s: the process or its instance "
                                   "is gone)")
        return None


def single_process() -> Dist:
    """A one-process job: on the GPU when there is one."""
    return Dist(torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))


def from_environ(on_peer_failure: Callable[[PeerFailure], None], timeout: float
                 ) -> ProcessGroup:
    """The process group of a worker started by the agent (torch's variables)."""
    local_world = int(os.environ["LOCAL_WORLD_SIZE"])
    world = int(os.environ["WORLD_SIZE"])
    hosts = tuple(os.environ["SM_VISION_HOSTS"].split(","))
    return ProcessGroup(rank=int(os.environ["RANK"]), world=world,
                        local_rank=int(os.environ["LOCAL_RANK"]), local_world=local_world,
                        master_addr=os.environ["MASTER_ADDR"],
                        master_port=int(os.environ["MASTER_PORT"]), hosts=hosts,
                        cuda=os.environ.get("SM_VISION_CUDA") == "1", timeout=timeout,
                        on_peer_failure=on_peer_failure)
