"""Spot interruptions: SIGTERM mid-epoch saves a checkpoint; the rerun ends bit-identical."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import (
    BIN,
    CHECKPOINT_KEYS,
    FAST_HYPERPARAMETERS,
    make_opt_ml,
    run_train,
    train_env,
)
from train import checkpoint
from train.errors import UserError

# 120 images / batch 2 = 60 batches an epoch: plenty of room to land SIGTERM mid-epoch.
HPS = {**FAST_HYPERPARAMETERS, "epochs": "3", "mini_batch_size": "2", "num_workers": "1",
       "optimizer": "sgd", "learning_rate": "0.01"}


def _weights(base):
    return load_file(str(base / "model/model.safetensors"))


@pytest.mark.parametrize("delay", [0.5, 1.0, 3.0])
def test_sigterm_while_the_job_starts_fails_it_as_interrupted(tmp_path, digits_small, delay):
    """SIGTERM during the first seconds (imports, data loading): never a silent death by
    signal 15, always exit 143 with the reason in output/failure."""
    channels = {"train": digits_small / "train", "validation": digits_small / "validation"}
    base = make_opt_ml(tmp_path, HPS, channels)
    proc = subprocess.Popen([str(BIN / "train")], env=train_env(base), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, log[-2000:]
    assert (base / "output/failure").read_text().startswith(
        "Interrupted: training stopped by SIGTERM"), log[-2000:]
    assert not (base / "output/success").exists()


def test_sigterm_then_restart_matches_an_uninterrupted_run(tmp_path, digits_small):
    channels = {"train": digits_small / "train", "validation": digits_small / "validation"}
    reference = make_opt_ml(tmp_path / "reference", HPS, channels)
    assert run_train(reference).returncode == 0

    base = make_opt_ml(tmp_path / "interrupted", HPS, channels)
    proc = subprocess.Popen([str(BIN / "train")], env=train_env(base), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    sent_at = None
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if sent_at is None and "Epoch[1] Batch [20]" in line:
            proc.send_signal(signal.SIGTERM)
            sent_at = time.monotonic()
        assert time.monotonic() < deadline
    code = proc.wait(timeout=60)
    log = "".join(lines)

    assert sent_at is not None, log[-2000:]
    assert code == 143, log[-2000:]
    failure = (base / "output/failure").read_text()
    assert failure.startswith("Interrupted: training stopped by SIGTERM at epoch 1")
    assert "checkpoint saved to" in log and "(epoch 1, sample 4" in log  # mid-epoch
    state = checkpoint.load(base / "checkpoints")
    assert state is not None and set(state) == CHECKPOINT_KEYS
    assert state["task"] == "image_classification"
    assert not (base / "model/model.safetensors").exists()

    resumed = run_train(base)  # the same tree, with the first run's output/failure in it
    assert resumed.returncode == 0, resumed.log[-2000:]
    assert "resuming from checkpoint" in resumed.log
    assert sorted(p.name for p in (base / "output").iterdir()) == ["success"]

    expected, actual = _weights(reference), _weights(base)
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert not different, different[:5]


@pytest.mark.parametrize("content", [b"not a checkpoint", b"PK\x03\x04" + bytes(64)])
def test_an_unreadable_checkpoint_is_a_client_error_that_never_advises_unpickling(tmp_path,
                                                                                  content):
    (tmp_path / checkpoint.CHECKPOINT_FILE).write_bytes(content)
    with pytest.raises(UserError, match=r"cannot be read.*delete it") as error:
        checkpoint.load(tmp_path)
    assert "weights_only" not in str(error.value)
