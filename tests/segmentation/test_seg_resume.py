"""Checkpoints: a stopped segmentation job saves one and, resumed, ends bit-identical; SIGTERM
through the train command exits 143; a checkpoint from another configuration is refused."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from common import artifact
from tests.conftest import BIN, CHECKPOINT_KEYS, train_env
from tests.segmentation.conftest import seg_job
from train import checkpoint
from train.contract import TrainingEnv
from train.errors import TrainingInterrupted, UserError
from train.segmentation import run, synthetic

# 12 images / batch 4 = 3 batches an epoch; early stopping on, so its state is resumed too.
HPS = {"epochs": "3", "mini_batch_size": "4", "crop_size": "48", "base_size": "48",
       "early_stopping": "1", "early_stopping_min_epochs": "2",
       "early_stopping_patience": "2"}


class StopAfter:
    """A StopRequest that asks to stop after ``batches`` polls (one poll per batch)."""

    def __init__(self, batches: int) -> None:
        self.left = batches

    def __call__(self) -> bool:
        self.left -= 1
        return self.left < 0


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.build(tmp_path_factory.mktemp("resume_data"), train=12, validation=4,
                           size=48)


def test_stopped_mid_epoch_then_resumed_matches_an_uninterrupted_run(tmp_path: Path,
                                                                     small_data: Path) -> None:
    reference = seg_job(tmp_path / "reference", small_data, **HPS)
    expected_metrics = run(reference, lambda: False)

    job = seg_job(tmp_path / "interrupted", small_data, **HPS)
    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM at epoch 1; checkpoint "
                                                  "saved to"):
        run(job, StopAfter(4))  # epoch 0's 3 batches, then 1 batch of epoch 1
    state = checkpoint.load(job.checkpoint_dir)
    assert state is not None
    assert (state["progress"]["epoch"], state["progress"]["batch_samples"]) == (1, 4)
    assert state["progress"]["best_epoch"] == 0
    assert not (job.model_dir / "model.safetensors").exists()

    assert run(job, lambda: False) == expected_metrics
    expected = artifact.load_state_dict(reference.model_dir)
    actual = artifact.load_state_dict(job.model_dir)
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert not different, different[:5]


def test_checkpoint_of_another_configuration_is_refused(tmp_path: Path,
                                                        tiny_data: Path) -> None:
    env = seg_job(tmp_path / "job", tiny_data, epochs="1")
    run(env, lambda: False)
    assert (env.checkpoint_dir / checkpoint.CHECKPOINT_FILE).is_file()
    hps_file = env.base_dir / "input" / "config" / "hyperparameters.json"
    hps = json.loads(hps_file.read_text()) | {"algorithm": "psp", "crop_size": "60"}
    hps_file.write_text(json.dumps(hps))
    with pytest.raises(UserError, match="written by a job with different settings") as caught:
        run(TrainingEnv.from_base_dir(env.base_dir), lambda: False)
    assert "algorithm: 'fcn' → 'psp'" in str(caught.value)
    assert "crop:" not in str(caught.value)  # 60 rounds up to the same 64 crop: no change
    assert "delete it or use a new checkpoint location" in str(caught.value)


def test_sigterm_to_the_train_command_checkpoints_exits_143_and_resumes(
        tmp_path: Path, small_data: Path) -> None:
    env = seg_job(tmp_path, small_data, **HPS)
    proc = subprocess.Popen([str(BIN / "train")], env=train_env(env.base_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if "Epoch[0] train:loss" in line:
            proc.send_signal(signal.SIGTERM)
        assert time.monotonic() < deadline
    code = proc.wait(timeout=60)
    log = "".join(lines)
    assert code == 143, log[-2000:]
    failure = (env.base_dir / "output" / "failure").read_text()
    assert failure.startswith("Interrupted: training stopped by SIGTERM at epoch 1"), failure
    assert (env.checkpoint_dir / checkpoint.CHECKPOINT_FILE).is_file()

    (env.base_dir / "output" / "failure").unlink()
    resumed = subprocess.run([str(BIN / "train")], env=train_env(env.base_dir),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "resuming from checkpoint" in resumed.stdout
    assert "Epoch[0] train:loss" not in resumed.stdout
    assert (env.base_dir / "output" / "success").exists()


def test_the_engines_features_apply_to_segmentation(tmp_path: Path, small_data: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """checkpoint_frequency and the checkpoint layout come from the one engine: the same as
    classification's."""
    caplog.set_level("INFO")
    env = seg_job(tmp_path, small_data, **{**HPS, "epochs": "2", "checkpoint_frequency": "2",
                                           "early_stopping": "0"})
    run(env, lambda: False)
    assert caplog.text.count("checkpoint saved to") == 1  # after epoch 2 only
    state = checkpoint.load(env.checkpoint_dir)
    assert state is not None and state["task"] == "semantic_segmentation"
    assert state["progress"]["epoch"] == 2
    assert set(state) == CHECKPOINT_KEYS
