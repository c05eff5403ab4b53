"""The per-host launcher of a distributed job: what the ``train`` command runs when the job has
more than one process.

It starts one worker process per GPU (or ``processes_per_host`` on a CPU instance) with
torch.distributed's variables, forwards SIGTERM to them, and turns their outcomes into this
host's outcome: ``output/success`` when every local worker succeeded, else the most telling
reason (a local failure before a peer's, a peer's before a worker killed without a word). A
worker that dies without reporting (killed by a signal, e.g. out of memory) is announced to the
peers on its behalf, so that the other hosts stop within seconds instead of waiting in a
collective.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from train.distributed import outcome
from train.distributed.outcome import Outcome
from train.distributed.topology import Topology
from train.interrupt import StopRequest

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
# After one local worker failed, how long the others get to notice and report on their own.
GRACE_SECONDS = 60.0
KILL_AFTER_SECONDS = 10.0


def run(topology: Topology, stop: StopRequest) -> Outcome:
    """Run this host's workers to their end; the host's outcome (rank: the first local one)."""
    directory = Path(tempfile.mkdtemp(prefix="sm-vision-ranks-"))
    log.info("distributed job: %d hosts x %d processes (%s, master %s:%d); this host is %s "
             "(node rank %d)", len(topology.hosts), topology.local_world, topology.backend,
             topology.master_addr, topology.master_port, topology.current_host,
             topology.host_index)
    workers = {topology.rank(local): _start(topology, local, directory)
               for local in range(topology.local_world)}
    forwarded = False
    failed_at: float | None = None
    codes: dict[int, int] = {}
    while len(codes) < len(workers):
        if stop() and not forwarded:
            forwarded = True
            for proc in workers.values():
                _signal(proc, signal.SIGTERM)
        for rank, proc in workers.items():
            if rank in codes or proc.poll() is None:
                continue
            codes[rank] = proc.returncode
            if proc.returncode != 0:
                failed_at = failed_at or time.monotonic()
                if outcome.read(directory, rank) is None:
                    _announce_death(topology, rank, proc.returncode)
        if failed_at is not None:
            _stop_stragglers(workers, codes, failed_at)
        time.sleep(POLL_SECONDS)
    result = _host_outcome(topology, directory, codes)
    shutil.rmtree(directory, ignore_errors=True)
    return result


def _start(topology: Topology, local_rank: int, directory: Path) -> subprocess.Popen:
    env = {**os.environ, **topology.worker_environ(local_rank),
           outcome.OUTCOME_DIR_ENV: str(directory), outcome.AGENT_PID_ENV: str(os.getpid())}
    return subprocess.Popen([sys.executable, "-m", "train.distributed.worker"], env=env)


def _signal(proc: subprocess.Popen, signum: int) -> None:
    if proc.poll() is None:
        proc.send_signal(signum)


def _stop_stragglers(workers: dict[int, subprocess.Popen], codes: dict[int, int],
                     failed_at: float) -> None:
    waited = time.monotonic() - failed_at
    for rank, proc in workers.items():
        if rank in codes:
            continue
        if waited > GRACE_SECONDS + KILL_AFTER_SECONDS:
            _signal(proc, signal.SIGKILL)
        elif waited > GRACE_SECONDS:
            _signal(proc, signal.SIGTERM)


def _death(rank: int, code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"rank {rank} was killed by {name}{hint}"
    return f"rank {rank} exited with status {code} without reporting why"


def _announce_death(topology: Topology, rank: int, code: int) -> None:
    """Tell the peers, in the dead worker's place, through the rendezvous store."""
    import json
    from datetime import timedelta

    import torch.distributed as dist

    from train.distributed.runtime import FAILED_KEY

    try:
        store = dist.TCPStore(topology.master_addr, topology.master_port, is_master=False,
                              timeout=timedelta(seconds=10), wait_for_workers=False)
        store.set(f"{FAILED_KEY}{rank}", json.dumps({"kind": "AlgorithmError",
                                                     "message": _death(rank, code)}))
    except Exception as exc:  # the master host itself may be the one that is gone
        log.warning("could not tell the peers that rank %d died: %s", rank, exc)


PRIORITY = {"ClientError": 0, "AlgorithmError": 1, "Interrupted": 2}


def _host_outcome(topology: Topology, directory: Path, codes: dict[int, int]) -> Outcome:
    outcomes = {rank: outcome.read(directory, rank) for rank in codes}
    first = topology.rank(0)
    if all(code == 0 for code in codes.values()):
        return Outcome(first, None)
    reported = [o for o in outcomes.values() if o is not None and o.kind is not None]
    # This host's own failures first, then a peer's (as seen from here).
    reported.sort(key=lambda o: (o.peer, PRIORITY[o.kind or "AlgorithmError"], o.rank))
    if reported:
        chosen = reported[0]
        prefix = f"rank {chosen.rank}: " if topology.local_world > 1 and not chosen.peer else ""
        return Outcome(chosen.rank, chosen.kind, prefix + chosen.message, chosen.peer)
    rank, code = next((r, c) for r, c in codes.items() if c != 0)
    return Outcome(rank, "AlgorithmError", _death(rank, code))
