"""`make push` for real: a local registry (Debian's docker-registry) and ECR on moto_server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, stop_process
from tests.container.conftest import docker

pytestmark = pytest.mark.container
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _wait_http(url: str, proc: subprocess.Popen, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args} exited early"
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def registry(tmp_path):
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("Debian's docker-registry is not installed (apt-get install docker-registry)")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{port}/v2/", proc)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)
        shutil.rmtree(tmp_path / "storage", ignore_errors=True)  # gigabytes of layers


@pytest.fixture
def moto(monkeypatch):
    port = free_port()
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{port}/moto-api/", proc)
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield env
    finally:
        stop_process(proc)


def test_make_push_to_a_registry_then_pull_by_digest(images, cpu_image, registry):
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True).stdout.strip() or "dev"
    for image in (*images, cpu_image):  # make push pushes <name>:<revision> and <name>:latest
        docker("tag", image, image.replace(":latest", f":{revision}"))
    result = subprocess.run(["make", "push", f"REGISTRY={registry}"], cwd=REPO,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    digests = dict(line.split()[1:3] for line in result.stdout.splitlines()
                   if line.startswith("pushed "))
    assert set(digests) == {f"{registry}/sm-vision-{role}:{tag}"
                            for role in ("train", "serve", "serve-cpu")
                            for tag in (revision, "latest")}
    remote = f"{registry}/sm-vision-serve:latest"
    reference = f"{registry}/sm-vision-serve@{digests[remote]}"
    docker("pull", reference)
    pulled = docker("image", "inspect", "--format", "{{.Id}}", reference).stdout.strip()
    assert pulled == docker("image", "inspect", "--format", "{{.Id}}", images[1]).stdout.strip()


def test_ecr_steps_against_moto(moto, registry, monkeypatch, tmp_path):
    """Repository creation (scan on push), idempotently, and token → docker login."""
    sys.path.insert(0, str(REPO / "containers"))
    try:
        import push
    finally:
        sys.path.pop(0)
    session, ecr = push.ecr_client(None)
    assert push.account_id(session) == "123456789012"
    uri = push.ensure_repository(ecr, "sm-vision-train")
    assert uri == push.ensure_repository(ecr, "sm-vision-train")  # exists: not created twice
    repos = ecr.describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in repos] == ["sm-vision-train"]
    assert repos[0]["imageScanningConfiguration"] == {"scanOnPush": True}

    login = push.ecr_login(ecr)
    assert login.username == "AWS" and login.password
    assert login.registry == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    # The same credentials, through the real `docker login`, against a registry we can reach
    # (DOCKER_CONFIG: never write to the user's own ~/.docker/config.json).
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    push.docker_login(push.EcrLogin(registry, login.username, login.password))


def test_push_without_region_or_credentials_says_what_to_fix(images, monkeypatch, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    result = subprocess.run([sys.executable, str(REPO / "containers/push.py"), "--images",
                             "sm-vision-serve", "--tags", "latest"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "no AWS region" in result.stderr
