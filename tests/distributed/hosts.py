"""Several SageMaker hosts on one machine: one ``/opt/ml`` tree and one ``train`` process per
host, loopback addresses as host names (``127.0.0.1``, ``127.0.0.2``, ...)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import BIN, JobOutput, free_port, make_opt_ml, stop_process, train_env


def host_names(count: int) -> list[str]:
    return [f"127.0.0.{i + 1}" for i in range(count)]


def make_hosts(root: Path, count: int, hyperparameters: dict[str, str],
               channels: dict[str, Path | None], **kwargs) -> list[Path]:
    """One tree per host, each with the same data (FullyReplicated), as SageMaker lays out."""
    hosts = host_names(count)
    return [make_opt_ml(root / host, hyperparameters, channels, resource_config={
        "current_host": host, "hosts": hosts, "network_interface_name": "lo"}, **kwargs)
        for host in hosts]


@dataclass
class Host(JobOutput):
    base: Path
    proc: subprocess.Popen
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def workers(self) -> list[int]:
        """PIDs of this host's training processes (the agent's children)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def start_hosts(bases: list[Path], port: int | None = None, **extra_env: str) -> list[Host]:
    port = port or free_port()
    hosts = []
    for base in bases:
        log_path = base.parent / f"{base.name}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen([str(BIN / "train")], stdout=log, stderr=subprocess.STDOUT,
                                    env=train_env(base, SM_VISION_MASTER_PORT=str(port),
                                                  **extra_env))
        hosts.append(Host(base, proc, log_path))
    return hosts


def wait_all(hosts: list[Host], timeout: float) -> list[int]:
    """Exit codes, or the hosts are stopped (by PID) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    try:
        return [host.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
                for host in hosts]
    finally:
        stop(hosts)


def wait_for_line(host: Host, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in host.log:
        assert host.proc.poll() is None, host.log[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} after {timeout} s:\n{host.log[-3000:]}"
        time.sleep(0.2)


def stop(hosts: list[Host]) -> None:
    for host in hosts:
        for pid in host.workers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if host.proc.poll() is None:
            stop_process(host.proc)
