"""One process of a distributed job: ``python -m train.distributed.worker``, started by the
host's agent with torch.distributed's variables (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ...).

It joins the process group, runs the training engine, and leaves its outcome for the agent.
When it fails it tells its peers through the rendezvous store; when a peer fails, its watchdog
ends it within seconds with a reason that names the peer.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path

from train import interrupt
from train.contract import TrainingEnv
from train.distributed import outcome
from train.distributed.outcome import AGENT_PID_ENV, Outcome
from train.distributed.runtime import DEAD_AFTER_SECONDS, HEARTBEAT_SECONDS, PeerFailure
from train.distributed.topology import timeout_seconds

log = logging.getLogger("train")


def setup_logging(rank: int, local_rank: int) -> None:
    from train.cli import setup_logging as setup
    from train.task import metrics_log

    setup(f"rank {rank}")
    if local_rank != 0:  # one process per host speaks; the others only warn
        logging.getLogger().setLevel(logging.WARNING)
    if rank != 0:  # metric lines once per job, with values over every rank
        metrics_log.setLevel(logging.WARNING)


def share_cores(local_world: int) -> None:
    """The instance's cores are split between its training processes (unless the user set
    OMP_NUM_THREADS): more threads than cores makes every process slower."""
    if "OMP_NUM_THREADS" in os.environ or local_world == 1:
        return
    import torch

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // local_world))


def _die_with_the_agent() -> None:
    """A worker whose agent is gone (killed) would train on unsupervised: end it with it."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != os.environ.get(AGENT_PID_ENV):  # it died before the call
        os._exit(1)


def main() -> int:
    stop = interrupt.install()
    _die_with_the_agent()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    directory = Path(os.environ[outcome.OUTCOME_DIR_ENV])
    setup_logging(rank, local_rank)

    def on_peer_failure(failure: PeerFailure) -> None:
        """Watchdog thread: a peer is gone, so this rank would wait forever in a collective."""
        message = f"stopped because {failure.describe()}"
        log.error("%s", message)
        if dist is not None:
            dist.acknowledge_failure()
        outcome.write(directory, Outcome(rank, failure.kind, message, peer=True))
        logging.shutdown()
        os._exit(outcome.EXIT_CODES[failure.kind])

    dist = None
    try:
        from train import engine, tasks
        from train.distributed.runtime import from_environ

        env = TrainingEnv.from_environ()
        share_cores(int(os.environ["LOCAL_WORLD_SIZE"]))
        task = tasks.create(env)
        stop.check("while the training code was loading")
        dist = from_environ(on_peer_failure, timeout_seconds())
        engine.run(env, stop, task, dist)
        dist.finish()
    except BaseException as exc:  # every ending is reported to the agent
        kind = outcome.classify(exc)
        message = str(exc)
        if kind == "AlgorithmError":
            trace = traceback.format_exc()
            log.error("%s", trace)
            message = (f"{type(exc).__name__}: {exc} (an internal error; please report it)"
                       f"\n\n{trace}")
            if dist is not None and _is_peer_error(exc):
                # A collective broke because a peer is gone: give the watchdog the time to
                # name that peer (it ends this process) before blaming this rank.
                time.sleep(DEAD_AFTER_SECONDS + 4 * HEARTBEAT_SECONDS)
        if dist is not None:
            dist.announce_failure(kind, message)
        outcome.write(directory, Outcome(rank, kind, message))
        if dist is not None:
            dist.wait_for_peers_to_see_failure()
        return outcome.EXIT_CODES[kind]
    outcome.write(directory, Outcome(rank, None))
    return 0


def _is_peer_error(exc: BaseException) -> bool:
    import torch.distributed as dist

    return isinstance(exc, dist.DistError) or "gloo" in str(exc).lower()


if __name__ == "__main__":
    sys.exit(main())
