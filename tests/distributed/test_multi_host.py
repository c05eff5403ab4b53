"""Distributed training on this machine: several hosts (one ``/opt/ml`` tree and one ``train``
process each, loopback addresses as host names) and several processes per host, over gloo."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from common import artifact
from tests.conftest import FAST_HYPERPARAMETERS, make_opt_ml, run_train
from tests.distributed.hosts import make_hosts, start_hosts, wait_all, wait_for_line
from train import checkpoint

pytestmark = pytest.mark.slow

# Two "hosts" share this machine's cores: one thread each.
ENV = {"OMP_NUM_THREADS": "1", "SM_VISION_DNS_WAIT_SECONDS": "5"}


def _channels(data: Path) -> dict[str, Path | None]:
    return {"train": data / "train", "validation": data / "validation"}


def test_two_hosts_train_one_model_as_accurate_as_one_host(digits_full, tmp_path):
    """One host with a global batch of 32 against two hosts of mini_batch_size 16 (per host):
    the same global batch and epochs, trained until the accuracy has settled (the learning
    rate drops after epochs 6 and 8), with SyncBatchNorm so that the two see the same batch
    statistics. The two are the same computation up to float summation order, which training
    amplifies: the accuracy still moving would make the comparison a coin toss."""
    hps = {**FAST_HYPERPARAMETERS, "epochs": "10", "lr_scheduler_step": "6,8",
           "num_classes": "10", "syncbn": "1", "mini_batch_size": "32"}
    single = make_opt_ml(tmp_path / "single", hps, _channels(digits_full))
    result = run_train(single, timeout=900)
    assert result.returncode == 0, result.log[-3000:]
    one_host = artifact.load_metadata(single / "model")
    bases = make_hosts(tmp_path / "two", 2, {**hps, "mini_batch_size": "16"},
                       _channels(digits_full))
    hosts = start_hosts(bases, **ENV)
    assert wait_all(hosts, 900) == [0, 0], hosts[0].log[-3000:] + hosts[1].log[-3000:]
    assert all(host.succeeded for host in hosts)
    assert (bases[0] / "model" / "model.safetensors").exists()
    assert not (bases[1] / "model" / "model.safetensors").exists()  # exactly one model
    two_hosts = artifact.load_metadata(bases[0] / "model")
    print("validation accuracy: 1 host", one_host.metrics["validation:accuracy"], "2 hosts",
          two_hosts.metrics["validation:accuracy"])
    assert abs(two_hosts.metrics["validation:accuracy"]
               - one_host.metrics["validation:accuracy"]) <= 0.01
    # Metric lines once per job (the first host), with values over both hosts' samples.
    assert "Epoch[9] Validation-accuracy=" in hosts[0].log
    assert "Validation-accuracy=" not in hosts[1].log
    assert "distributed job: 2 hosts x 1 processes (gloo, master 127.0.0.1" in hosts[1].log


def test_one_epoch_on_two_ranks_equals_one_rank_with_the_same_global_batch(digits_small,
                                                                           tmp_path):
    """Two processes on one host with SyncBatchNorm take the steps one process takes with
    their two batches together: the same weights, up to float summation order. The head alone
    trains (a convex problem): training every layer of a ResNet from scratch on 8-image
    batches is chaotic, and float noise alone (one thread or two) moves its weights by 1.0;
    SyncBatchNorm's gradients are checked exactly in test_sync_batchnorm.py."""
    hps = {**FAST_HYPERPARAMETERS, "epochs": "1", "mini_batch_size": "8", "syncbn": "1",
           "optimizer": "sgd", "learning_rate": "0.05", "finetune": "head"}
    one = make_opt_ml(tmp_path / "one", hps, _channels(digits_small))
    assert run_train(one).returncode == 0
    two = make_opt_ml(tmp_path / "two", {**hps, "processes_per_host": "2"},
                      _channels(digits_small))
    result = run_train(two, **ENV)
    assert result.returncode == 0, result.log[-3000:]
    assert "distributed job: 1 hosts x 2 processes" in result.log
    expected = load_file(str(one / "model" / artifact.WEIGHTS_FILE))
    actual = load_file(str(two / "model" / artifact.WEIGHTS_FILE))
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=1e-4, atol=1e-5, msg=name)


def _training(tmp_path: Path, data: Path) -> list:
    """Two hosts that have finished epoch 0 (of 6) and train epoch 1 (15 steps of 2 x 4)."""
    hyperparameters = {**FAST_HYPERPARAMETERS, "epochs": "6", "mini_batch_size": "4"}
    bases = make_hosts(tmp_path, 2, hyperparameters, _channels(data))
    hosts = start_hosts(bases, **ENV)
    wait_for_line(hosts[0], "Epoch[0] Validation-accuracy=", 300)
    return hosts


def test_a_killed_host_stops_every_host_within_a_minute(digits_small, tmp_path):
    hosts = _training(tmp_path, digits_small)
    (worker,) = hosts[1].workers()
    os.kill(worker, signal.SIGKILL)  # e.g. the out-of-memory killer
    killed_at = time.monotonic()
    codes = wait_all(hosts, 120)
    assert time.monotonic() - killed_at < 60
    assert codes[0] != 0 and codes[1] != 0
    assert hosts[1].failure.startswith("AlgorithmError: rank 1 was killed by SIGKILL")
    assert hosts[0].failure.startswith(
        "AlgorithmError: stopped because host 127.0.0.2 (rank 1) failed: rank 1 was killed by "
        "SIGKILL"), hosts[0].failure


def test_the_first_hosts_client_error_is_what_every_host_reports(digits_small, tmp_path):
    """Rank 0 hosts the rendezvous store: when it fails (here: an unreadable checkpoint,
    before the first collective), the other host still learns why, and says so."""
    bases = make_hosts(tmp_path, 2, {**FAST_HYPERPARAMETERS, "epochs": "1"},
                       _channels(digits_small))
    (bases[0] / "checkpoints").mkdir()
    (bases[0] / "checkpoints" / checkpoint.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    hosts = start_hosts(bases, **ENV)
    assert wait_all(hosts, 180) == [1, 1], hosts[0].log[-2000:] + hosts[1].log[-2000:]
    assert hosts[0].failure.startswith("ClientError: checkpoint"), hosts[0].failure
    assert "cannot be read" in hosts[0].failure
    assert hosts[1].failure.startswith(
        "ClientError: stopped because host 127.0.0.1 (rank 0) failed: checkpoint"), \
        hosts[1].failure


def test_sigterm_on_one_host_stops_both_with_one_checkpoint_then_resumes(digits_small,
                                                                         tmp_path):
    hosts = _training(tmp_path / "job", digits_small)
    hosts[1].proc.send_signal(signal.SIGTERM)  # a spot interruption of the second instance
    assert wait_all(hosts, 120) == [143, 143], hosts[0].log[-2000:] + hosts[1].log[-2000:]
    for host in hosts:
        assert host.failure.startswith("Interrupted: training stopped by SIGTERM at epoch 1; "
                                       "checkpoint saved to"), host.failure
    first, second = (host.base for host in hosts)
    state = checkpoint.load(first / "checkpoints")
    assert state is not None and not (second / "checkpoints").exists()  # one checkpoint
    assert state["world"] == 2 and state["progress"]["epoch"] == 1
    # Both ranks stopped after the same step: a whole number of global batches (2 x 4).
    assert state["progress"]["batch_samples"] % 8 == 0 and state["progress"]["batch_samples"]
    # The same checkpoint resumes on one host...
    single = make_opt_ml(tmp_path / "single", {**FAST_HYPERPARAMETERS, "epochs": "6",
                                               "mini_batch_size": "4"}, _channels(digits_small))
    shutil.copytree(first / "checkpoints", single / "checkpoints")
    alone = run_train(single, timeout=600)
    assert alone.returncode == 0, alone.log[-3000:]
    assert "resuming from checkpoint" in alone.log
    # ... and on the two hosts, each of which lost its output/failure.
    again = start_hosts([first, second], **ENV)
    assert wait_all(again, 600) == [0, 0], again[0].log[-3000:] + again[1].log[-3000:]
    assert "resuming from checkpoint" in again[0].log
    assert all(sorted(p.name for p in (b / "output").iterdir()) == ["success"]
               for b in (first, second))


def test_two_hosts_resume_a_one_host_jobs_checkpoint(digits_small, tmp_path):
    """The reverse of the test above: a job on one host checkpoints after epoch 0 of 2; the
    same job on two hosts (each with a copy of the checkpoint channel, as SageMaker restores
    it) resumes at epoch 1 and finishes with one model."""
    hps = {**FAST_HYPERPARAMETERS, "mini_batch_size": "4"}
    one = make_opt_ml(tmp_path / "one", {**hps, "epochs": "1"}, _channels(digits_small))
    assert run_train(one, timeout=600).returncode == 0
    assert checkpoint.load(one / "checkpoints")["world"] == 1
    bases = make_hosts(tmp_path / "two", 2, {**hps, "epochs": "2"}, _channels(digits_small))
    for base in bases:
        shutil.copytree(one / "checkpoints", base / "checkpoints")
    hosts = start_hosts(bases, **ENV)
    assert wait_all(hosts, 600) == [0, 0], hosts[0].log[-3000:] + hosts[1].log[-3000:]
    assert "resuming from checkpoint" in hosts[0].log and "at epoch 1" in hosts[0].log
    assert "Epoch[0] Validation-accuracy=" not in hosts[0].log
    assert "Epoch[1] Validation-accuracy=" in hosts[0].log
    assert checkpoint.load(bases[0] / "checkpoints")["world"] == 2
    assert not (bases[1] / "model" / "model.safetensors").exists()


def test_segmentation_on_two_hosts_with_syncbn(seg_data, tmp_path):
    from tests.segmentation.conftest import CHANNELS, FAST

    hps = {**FAST, "epochs": "2", "mini_batch_size": "4", "syncbn": "1"}
    channels = {name: seg_data / name for name in CHANNELS if (seg_data / name).exists()}
    bases = make_hosts(tmp_path, 2, hps, channels)
    hosts = start_hosts(bases, **ENV)
    assert wait_all(hosts, 600) == [0, 0], hosts[0].log[-3000:] + hosts[1].log[-3000:]
    meta = artifact.load_metadata(bases[0] / "model")
    assert meta.task == "semantic_segmentation" and 0 < meta.metrics["validation:mIOU"] <= 1
    assert not (bases[1] / "model" / "model.safetensors").exists()
    assert "validation:mIOU=" in hosts[0].log and "validation:mIOU=" not in hosts[1].log
