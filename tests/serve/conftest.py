"""Fixtures for the model-server tests (helpers live in ``serving_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.serving_helpers import Server, write_model

# The shared server's settings; the in-process reference uses the same ones.
SHARED_SERVER_ENV = {
    "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
    "SAGEMAKER_BATCH": "True",
    "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "3",
}


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """Factory: start_server(base_dir, **env) -> Server; every server is stopped at teardown."""
    servers: list[Server] = []

    def start(base_dir: Path, **env: str) -> Server:
        server = Server(base_dir, tmp_path / f"server-{len(servers)}.log", env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def model_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake /opt/ml holding a 32x32 resnet18 with random weights (read-only: do not edit)."""
    return write_model(tmp_path_factory.mktemp("opt_ml"))


@pytest.fixture(scope="session")
def server(model_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared 2-worker server on ``model_base``, ready before the first test uses it."""
    log_dir = tmp_path_factory.mktemp("shared_server")
    srv = Server(model_base, log_dir / "server.log", SHARED_SERVER_ENV)
    try:
        srv.wait_until(ready=True)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def reference_model(model_base: Path):
    """The same model in-process, with the shared server's settings (same runtime, precision and
    threads), to check the server's numbers against."""
    from serve import model
    from serve.environment import ServingEnv

    env = ServingEnv.from_env({**SHARED_SERVER_ENV, "SAGEMAKER_BASE_DIR": str(model_base)})
    return model.load(env)
