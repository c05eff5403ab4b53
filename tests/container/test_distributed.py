"""A two-instance job as SageMaker runs one: two containers of the training image on one
user-defined network, with host names algo-1 and algo-2, each with its own /opt/ml tree."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import FAST_HYPERPARAMETERS, make_opt_ml
from tests.container.conftest import docker

pytestmark = pytest.mark.container

# An internal network (no route out): the two hosts see each other and nothing else.
SUBNET = "172.31.250.0/24"
HOSTS = {"algo-1": "172.31.250.2", "algo-2": "172.31.250.3"}


def test_two_containers_train_one_job(images, tmp_path, digits_small):
    network = f"sm-vision-test-{uuid.uuid4().hex[:8]}"
    docker("network", "create", "--internal", "--subnet", SUBNET, network)
    containers: list[str] = []
    try:
        trees = {}
        for host, address in HOSTS.items():
            trees[host] = make_opt_ml(
                tmp_path / host, {**FAST_HYPERPARAMETERS, "epochs": "2"},
                {"train": digits_small / "train", "validation": digits_small / "validation"},
                resource_config={"current_host": host, "hosts": list(HOSTS),
                                 "network_interface_name": "eth0"})
            hosts_file = [f"--add-host={name}:{ip}" for name, ip in HOSTS.items()]
            containers.append(docker(
                "run", "-d", "--network", network, "--ip", address, "--hostname", host,
                *hosts_file, "-e", "OMP_NUM_THREADS=1", "-v", f"{trees[host]}:/opt/ml",
                images[0], "train").stdout.strip())
        codes = [int(docker("wait", c, timeout=900).stdout.strip()) for c in containers]
        logs = [docker("logs", c, check=False) for c in containers]
        text = [log.stdout + log.stderr for log in logs]
        assert codes == [0, 0], text[0][-3000:] + text[1][-3000:]
        assert "distributed job: 2 hosts x 1 processes (gloo, master algo-1" in text[1]
        assert (trees["algo-1"] / "output/success").exists()
        assert (trees["algo-2"] / "output/success").exists()
        assert (trees["algo-1"] / "model/model.safetensors").exists()
        assert not (trees["algo-2"] / "model/model.safetensors").exists()
        assert "Epoch[1] Validation-accuracy=" in text[0]
    finally:
        for container in containers:
            docker("rm", "-f", container, check=False)
        docker("network", "rm", network, check=False)
