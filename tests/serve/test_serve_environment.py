"""The serving environment snapshot and the gunicorn settings built from it (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve import gunicorn_conf
from serve.environment import ConfigError, ServingEnv
from serve.hardware import gpu_count


def env_of(gpus: int = 0, cpus: int = 8, **environ: str) -> ServingEnv:
    return ServingEnv.from_env(environ, gpus=gpus, cpus=cpus)


def test_defaults_follow_the_sagemaker_contract():
    env = env_of()
    assert env.model_dir == Path("/opt/ml/model")
    assert env.port == 8080
    assert env.timeout_s == 60
    assert env.max_payload_mb == 6
    assert env.max_payload_bytes == 6 * 1024 * 1024
    assert not env.batch


def test_base_dir_relocates_the_model():
    assert env_of(SAGEMAKER_BASE_DIR="/tmp/x").model_dir == Path("/tmp/x/model")


@pytest.mark.parametrize(
    ("gpus", "cpus", "workers"),
    [(4, 32, 4), (1, 8, 1), (0, 1, 1), (0, 2, 2), (0, 8, 8), (0, 96, 8)],
)
def test_default_workers_come_from_the_hardware(gpus, cpus, workers):
    assert env_of(gpus=gpus, cpus=cpus).workers == workers


def test_workers_and_timeout_from_the_environment():
    env = env_of(SAGEMAKER_MODEL_SERVER_WORKERS="3", SAGEMAKER_MODEL_SERVER_TIMEOUT="120")
    assert (env.workers, env.timeout_s) == (3, 120)
    assert env.torch_threads == 8 // 3


@pytest.mark.parametrize("raw", ["True", "true", "1", "TRUE", " yes "])
def test_sagemaker_batch_truthy_spellings(raw):
    env = env_of(SAGEMAKER_BATCH=raw)
    assert env.batch
    assert env.batch_strategy == "MULTI_RECORD"


@pytest.mark.parametrize("raw", ["False", "false", "0", ""])
def test_sagemaker_batch_falsy_spellings(raw):
    env = env_of(SAGEMAKER_BATCH=raw)
    assert not env.batch
    assert env.batch_strategy == "SINGLE_RECORD"


def test_batch_settings_from_the_environment():
    env = env_of(
        SAGEMAKER_BATCH="true",
        SAGEMAKER_BATCH_STRATEGY="single_record",
        SAGEMAKER_MAX_PAYLOAD_IN_MB="20",
        SAGEMAKER_MAX_CONCURRENT_TRANSFORMS="7",
    )
    assert (env.batch_strategy, env.max_payload_mb, env.max_concurrent_transforms) == (
        "SINGLE_RECORD",
        20,
        7,
    )


def test_max_concurrent_transforms_defaults_to_the_worker_count():
    assert env_of(SAGEMAKER_MODEL_SERVER_WORKERS="3").max_concurrent_transforms == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SAGEMAKER_BATCH", "maybe"),
        ("SAGEMAKER_BATCH_STRATEGY", "EVERYTHING"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "0"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "-5"),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "six"),
        ("SAGEMAKER_BIND_TO_PORT", "http"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        env_of(**{name: value})


@pytest.fixture
def proc_gpus(tmp_path: Path) -> Path:
    for index in range(4):
        (tmp_path / f"0000:0{index}:00.0").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("visible", "count"),
    [(None, 4), ("0,1", 2), ("", 0), ("-1", 0), ("0,-1,2", 1), ("GPU-abc,GPU-def", 2)],
)
def test_gpu_count_reads_the_driver_and_cuda_visible_devices(proc_gpus, visible, count):
    environ = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    assert gpu_count(environ, proc_gpus) == count


def test_no_driver_means_no_gpu(tmp_path):
    assert gpu_count({"CUDA_VISIBLE_DEVICES": "0"}, tmp_path / "missing") == 0


def test_gunicorn_settings():
    settings = gunicorn_conf.settings(
        env_of(SAGEMAKER_BIND_TO_PORT="9000", SAGEMAKER_MODEL_SERVER_TIMEOUT="90")
    )
    assert settings["bind"] == ["0.0.0.0:9000"]
    assert settings["worker_class"] == "serve.worker.JsonErrorWorker"  # gthread, JSON errors
    assert settings["threads"] >= 2  # one thread always left for /ping
    assert settings["timeout"] == 90
    assert settings["graceful_timeout"] < 30
    assert settings["control_socket_disable"] is True
