"""Spot interruptions: SIGTERM mid-epoch saves a checkpoint; the rerun ends bit-identical."""

from __future__ import annotations

import signal
import subprocess
import time

import torch
from safetensors.torch import load_file

from tests.conftest import BIN, FAST_HYPERPARAMETERS, make_opt_ml, run_train, train_env

# 120 images / batch 2 = 60 batches an epoch: plenty of room to land SIGTERM mid-epoch.
HPS = {**FAST_HYPERPARAMETERS, "epochs": "3", "mini_batch_size": "2", "num_workers": "1",
       "optimizer": "sgd", "learning_rate": "0.01"}


def _weights(base):
    return load_file(str(base / "model/model.safetensors"))


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
    assert (base / "checkpoints/last.pt").exists()
    assert not (base / "model/model.safetensors").exists()

    (base / "output/failure").unlink()
    resumed = run_train(base)
    assert resumed.returncode == 0, resumed.log[-2000:]
    assert "resuming from checkpoint" in resumed.log

    expected, actual = _weights(reference), _weights(base)
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert not different, different[:5]
