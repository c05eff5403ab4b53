"""Pipe mode with two processes on one host: the host's first process reads each FIFO and deals
the samples out; both train, every sample once per epoch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import BIN, FAST_HYPERPARAMETERS, REFERENCE_DATA, REPO, make_opt_ml, train_env

pytestmark = pytest.mark.slow


def test_two_processes_share_one_fifo(tmp_path):
    recordio_dir = REFERENCE_DATA / "recordio"
    hps = {**FAST_HYPERPARAMETERS, "epochs": "2", "num_classes": "10", "mini_batch_size": "8",
           "processes_per_host": "2", "pipe_wait_seconds": "60"}
    base = make_opt_ml(tmp_path / "job", hps, {}, input_config={})
    command = [sys.executable, str(REPO / "local_test/pipe_emulator.py"), "--base-dir",
               str(base), "--configure", "--rec", f"train={recordio_dir / 'digits_train.rec'}",
               "--rec", f"validation={recordio_dir / 'digits_val.rec'}", "--", str(BIN / "train")]
    done = subprocess.run(command, env=train_env(base, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=600, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "distributed job: 1 hosts x 2 processes" in log
    # 160 records, dealt 80 + 80 in whole rounds: every one trained on, once, each epoch.
    assert log.count("epoch 0: 160 training samples on all ranks") == 1
    assert "epoch 1: 160 training samples on all ranks" in log
    assert "Epoch[1] Validation-accuracy=" in log
    assert (base / "model" / "model.safetensors").exists()
