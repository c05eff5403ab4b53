"""gunicorn settings and hooks, computed from a ``ServingEnv`` snapshot.

Worker class: ``gthread`` (``serve.worker.JsonErrorWorker``: its own errors are JSON too). The
main thread of each worker keeps the heartbeat and accepts
connections while request threads run the model, so a long inference neither trips the worker
timeout nor blocks /ping (see ``serve.admission``). This module must not import torch: it runs
in the master, which forks the workers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from serve import contract
from serve.environment import ServingEnv

# SIGTERM: stop accepting, let in-flight requests finish, exit 0. Well inside the 30 s SageMaker
# (and `docker stop` with -t 30) allows before SIGKILL.
GRACEFUL_TIMEOUT_S = 20
# Seconds an idle kept-alive connection stays open; the SageMaker front end reuses connections.
KEEPALIVE_S = 5

LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"

# Everything (master, workers, access log, our loggers) to stdout, one record per line.
LOGCONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stdout",
        }
    },
    "formatters": {"plain": {"format": LOG_FORMAT}},
}


def settings(env: ServingEnv) -> dict[str, Any]:
    shm = Path("/dev/shm")
    return {
        "bind": [f"0.0.0.0:{env.port}"],
        "workers": env.workers,
        "worker_class": "serve.worker.JsonErrorWorker",
        "threads": env.threads,
        "timeout": env.timeout_s,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "keepalive": KEEPALIVE_S,
        "accesslog": "-",
        "logconfig_dict": LOGCONFIG,
        "proc_name": "sm-vision-serve",
        # The default control socket lives in $HOME and would clash between servers.
        "control_socket_disable": True,
        # Heartbeat files on tmpfs: a slow overlay filesystem must not look like a hung worker.
        "worker_tmp_dir": str(shm) if shm.is_dir() else None,
        "post_fork": post_fork,
        "when_ready": when_ready,
    }


def post_fork(server: Any, worker: Any) -> None:
    """Runs in the new worker, before it imports torch."""
    # Which GPU is this worker's (ages start at 1).
    os.environ[contract.ENV_WORKER_ORDINAL] = str(worker.age - 1)
    # OpenMP threads that spin at barriers stall whenever another thread (a request decoding
    # images, another worker) takes their core: measured 5-10x slower inference on a busy box.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def when_ready(server: Any) -> None:
    logging.getLogger("serve").info(
        "listening on %s with %d %s worker(s) x %d threads",
        ", ".join(server.cfg.bind),
        server.cfg.workers,
        server.cfg.worker_class_str,
        server.cfg.threads,
    )
