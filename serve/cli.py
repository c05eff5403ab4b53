"""``serve``: the container's hosting entry point (SageMaker runs ``docker run IMAGE serve``).

Starts gunicorn in this process with the settings from ``serve.gunicorn_conf``. The model is
loaded in each worker after fork (``worker_app``), never in the master.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from serve import contract, gunicorn_conf
from serve.environment import ConfigError, ServingEnv

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("serve")


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, env: ServingEnv) -> None:
        self.env = env
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_conf.settings(self.env).items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return worker_app(self.env)


def worker_app(env: ServingEnv) -> Flask:
    """Build one worker's app; runs after fork, so the runtime (OpenVINO or torch) is first
    imported here, in the loader's thread."""
    from serve import model
    from serve.app import create_app
    from serve.loader import ModelSlot

    ordinal = int(os.environ.get(contract.ENV_WORKER_ORDINAL, "0"))
    slot = ModelSlot()
    slot.load_in_background(partial(model.load, env, ordinal),
                            partial(model.not_ready_reason, env))
    return create_app(env, slot)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serve",
        description="Serve the model in $SAGEMAKER_BASE_DIR/model (default /opt/ml/model) on "
        "$SAGEMAKER_BIND_TO_PORT (default 8080) with SageMaker's /ping and /invocations.",
    )
    # Tolerate `serve serve`, as when the image's ENTRYPOINT is this script itself.
    parser.add_argument("mode", nargs="?", choices=["serve"], help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> Any:
    get_args_parser().parse_args(argv)
    logging.config.dictConfig(gunicorn_conf.LOGCONFIG)
    logging.captureWarnings(True)  # library warnings go to stdout with the rest
    try:
        env = ServingEnv.from_env(os.environ)
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return 2
    log.info("serving %s (batch transform: %s)", env.model_dir, env.batch)
    _Server(env).run()
    return 0
