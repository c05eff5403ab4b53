"""Who is who in a distributed job, from ``resourceconfig.json`` and the host's processors.

Every instance in ``hosts`` joins one process group. The master is the first host; a host's
index (its node rank) is its position in ``hosts``; each host runs ``local_world`` processes
(one per GPU, else ``processes_per_host``, default 1), whose global rank is
``host_index * local_world + local_rank``. Traffic goes through ``network_interface_name``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass

from train.contract import TrainingEnv
from train.errors import UserError

# Ports and timeouts: every host must agree, so they are fixed (environment to override).
MASTER_PORT_ENV = "SM_VISION_MASTER_PORT"
DEFAULT_MASTER_PORT = 29500
TIMEOUT_ENV = "SM_VISION_DIST_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 1800.0
# SageMaker's host names (algo-1, ...) can take a little while to appear in DNS.
DNS_WAIT_ENV = "SM_VISION_DNS_WAIT_SECONDS"
DEFAULT_DNS_WAIT_SECONDS = 120.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topology:
    hosts: tuple[str, ...]
    host_index: int
    local_world: int
    master_port: int = DEFAULT_MASTER_PORT
    interface: str | None = None
    cuda: bool = False

    @property
    def world(self) -> int:
        return len(self.hosts) * self.local_world

    @property
    def master_addr(self) -> str:
        # One instance needs no network: its processes meet on loopback.
        return self.hosts[0] if len(self.hosts) > 1 else "127.0.0.1"

    @property
    def current_host(self) -> str:
        return self.hosts[self.host_index]

    def rank(self, local_rank: int) -> int:
        return self.host_index * self.local_world + local_rank

    @property
    def backend(self) -> str:
        return "nccl" if self.cuda else "gloo"

    def worker_environ(self, local_rank: int) -> dict[str, str]:
        """torch.distributed's conventional variables for one worker process."""
        env = {
            "RANK": str(self.rank(local_rank)),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": str(self.world),
            "LOCAL_WORLD_SIZE": str(self.local_world),
            "GROUP_RANK": str(self.host_index),
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
            "SM_VISION_HOSTS": ",".join(self.hosts),
            "SM_VISION_CUDA": "1" if self.cuda else "0",
        }
        if self.interface:
            # Users may pin other interfaces themselves; SageMaker's is the default.
            env["GLOO_SOCKET_IFNAME"] = os.environ.get("GLOO_SOCKET_IFNAME", self.interface)
            env["NCCL_SOCKET_IFNAME"] = os.environ.get("NCCL_SOCKET_IFNAME", self.interface)
        return env


def plan(env: TrainingEnv, processes_per_host: int | None, cuda_devices: int) -> Topology:
    """The job's topology; ``cuda_devices`` is this host's GPU count."""
    resources = env.resources
    hosts = tuple(resources.hosts)
    if resources.current_host not in hosts:
        raise UserError(f"resourceconfig.json: current_host {resources.current_host!r} is not "
                        f"in hosts {list(hosts)}")
    if len(set(hosts)) != len(hosts):
        raise UserError(f"resourceconfig.json lists a host twice: {list(hosts)}")
    if processes_per_host is not None and cuda_devices and processes_per_host > cuda_devices:
        raise UserError(f"processes_per_host={processes_per_host} but this instance has "
                        f"{cuda_devices} GPU(s); use at most one process per GPU")
    local = processes_per_host or cuda_devices or 1
    return Topology(hosts=hosts, host_index=hosts.index(resources.current_host),
                    local_world=local, master_port=_port(), interface=resources.
                    network_interface_name, cuda=cuda_devices > 0)


def wait_for_master(topology: Topology) -> None:
    """Resolve the master's host name, retrying for a bounded time; a name that never
    resolves (a resourceconfig.json written by hand) fails clearly instead of hanging."""
    deadline = time.monotonic() + float(os.environ.get(DNS_WAIT_ENV, DEFAULT_DNS_WAIT_SECONDS))
    while True:
        try:
            socket.getaddrinfo(topology.master_addr, topology.master_port)
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise UserError(
                    f"the master host {topology.master_addr!r} (the first of resourceconfig."
                    f"json's hosts) does not resolve ({exc}); on SageMaker this is a network "
                    "problem, locally give every host a name that resolves, e.g. \"hosts\": "
                    "[\"127.0.0.1\", \"127.0.0.2\"]"
                ) from None
            log.info("waiting for %s to resolve (%s)", topology.master_addr, exc)
            time.sleep(1.0)


def _port() -> int:
    text = os.environ.get(MASTER_PORT_ENV)
    if not text:
        return DEFAULT_MASTER_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UserError(f"{MASTER_PORT_ENV}={text!r} is not a TCP port")
    return int(text)


def timeout_seconds() -> float:
    return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS))
