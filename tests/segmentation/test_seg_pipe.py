"""Pipe mode for semantic segmentation: Ground Truth manifests streamed as SageMaker streams them
(photo bytes, label PNG bytes, metadata JSON per line), checked pair by pair as they pass.
``inputdataconfig.json`` holds only what SageMaker writes: a stream of three attributes is
described by the hyperparameter ``attribute_names``, the built-in two need nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common import artifact
from tests.conftest import (
    BIN,
    REPO,
    channel_config,
    load_local_test_script,
    make_opt_ml,
    train_env,
)
from tests.segmentation.conftest import FAST, gt_job
from train import checkpoint
from train.contract import SAGEMAKER_CHANNEL_KEYS, TrainingEnv
from train.errors import TrainingInterrupted, UserError
from train.segmentation import run, synthetic
from train.segmentation.data import load_split, read_mask
from train.segmentation.pipe import SegmentationStream, load_channel

LABEL = f"{synthetic.GT_JOB}-ref"
WITH_METADATA = ("source-ref", LABEL, f"{LABEL}-metadata")
PIPE = channel_config("application/x-recordio", "Pipe", wrapper="RecordIO")


def _emulator():
    return load_local_test_script("pipe_emulator")


@pytest.fixture(scope="module")
def gt_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.build_ground_truth(tmp_path_factory.mktemp("gt_pipe"), train=8,
                                        validation=4, size=48)


def _stream_bytes(data: Path, split: str, names: tuple[str, ...] = WITH_METADATA) -> bytes:
    """What SageMaker writes into one FIFO for the split's manifest (via the emulator)."""
    feed, _ = _emulator().manifest_feed(data / split / f"{split}.manifest", data / "images",
                                        names, None)
    return b"".join(feed())


def _pipe_job(root: Path, data: Path, passes: int, *, names: tuple[str, ...] = WITH_METADATA,
              splits: tuple[str, ...] = ("train", "validation"), **hyperparameters: str
              ) -> TrainingEnv:
    """A job whose Pipe channels are regular files ``<channel>_<n>`` holding each pass (read
    exactly as FIFOs are). The hyperparameter ``attribute_names`` names the streamed records
    (as the user names them to the SDK)."""
    config = dict.fromkeys(splits, PIPE)
    hps = {**FAST, "pipe_wait_seconds": "2", "attribute_names": ",".join(names),
           **hyperparameters}
    base = make_opt_ml(root, hps, {}, input_config=config)
    data_dir = base / "input" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for split in splits if passes else ():
        payload = _stream_bytes(data, split, names)
        for n in range(passes):
            (data_dir / f"{split}_{n}").write_bytes(payload)
    return TrainingEnv.from_base_dir(base)


def test_streamed_pairs_equal_file_mode_pairs(tmp_path: Path, gt_data: Path) -> None:
    piped = _pipe_job(tmp_path / "pipe", gt_data, 1, num_training_samples="8")
    stream = load_channel(piped, "train", 3, required=True, wait_seconds=2,
                          attribute_names=",".join(WITH_METADATA))
    assert isinstance(stream, SegmentationStream)
    streamed = list(stream.read_pass(0))
    split = load_split(gt_job(tmp_path / "file", gt_data), "train", 3, required=True)
    assert split is not None and len(streamed) == len(split.pairs) == 8
    for got, pair in zip(streamed, split.pairs, strict=True):
        assert got.image == pair.image.read_bytes() and got.mask == pair.mask.read_bytes()
        assert got.colors == pair.colors != ()
        assert np.array_equal(read_mask(got.mask, got.colors, got.name),
                              read_mask(pair.mask, pair.colors))


def test_job_trains_from_streams_pass_by_pass(tmp_path: Path, gt_data: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    env = _pipe_job(tmp_path, gt_data, 2, epochs="2", num_training_samples="8",
                    crop_size="48", base_size="48", shuffle_buffer_size="4")
    final = run(env, lambda: False)
    assert 0.0 <= final["validation:mIOU"] <= 1.0
    for name in ("train_0", "train_1", "validation_0", "validation_1"):
        assert f"reading {name}" in caplog.text
    assert "but num_training_samples=" not in caplog.text
    assert artifact.load_metadata(env.model_dir).task == "semantic_segmentation"


def test_a_wrong_num_training_samples_is_reported(tmp_path: Path, gt_data: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    env = _pipe_job(tmp_path, gt_data, 1, splits=("train",), epochs="1",
                    num_training_samples="10", crop_size="32", base_size="48")
    run(env, lambda: False)
    assert "epoch 0 streamed 8 training pairs but num_training_samples=10" in caplog.text


def test_fifos_fed_by_the_emulator_train_the_console_script(tmp_path: Path,
                                                            gt_data: Path) -> None:
    """The real thing: FIFOs appear pass by pass, the `train` command reads them."""
    hps = {**FAST, "epochs": "2", "num_training_samples": "8", "crop_size": "48",
           "base_size": "48", "num_workers": "1", "pipe_wait_seconds": "60",
           "attribute_names": ",".join(WITH_METADATA)}
    base = make_opt_ml(tmp_path / "job", hps, {}, input_config={})
    command = [sys.executable, str(REPO / "local_test/pipe_emulator.py"), "--base-dir",
               str(base), "--configure", "--images", str(gt_data / "images"),
               "--attribute-names", ",".join(WITH_METADATA),
               "--manifest", f"train={gt_data / 'train/train.manifest'}",
               "--manifest", f"validation={gt_data / 'validation/validation.manifest'}",
               "--", str(BIN / "train")]
    done = subprocess.run(command, env=train_env(base), capture_output=True, text=True,
                          timeout=600, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    config = json.loads((base / "input/config/inputdataconfig.json").read_text())
    assert set(config["train"]) == SAGEMAKER_CHANNEL_KEYS  # no AttributeNames
    assert "set the job's hyperparameter attribute_names=" in log  # the emulator's reminder
    assert "reading train_1" in log and "reading validation_1" in log
    assert "validation:mIOU=" in log
    assert artifact.load_metadata(base / "model").task == "semantic_segmentation"
    assert not list((base / "input/data").iterdir())  # the emulator removed its FIFOs


def _fails(env: TrainingEnv, message: str) -> str:
    with pytest.raises(UserError, match=message) as caught:
        run(env, lambda: False)
    return str(caught.value)


def test_num_training_samples_is_required(tmp_path: Path, gt_data: Path) -> None:
    _fails(_pipe_job(tmp_path, gt_data, 1, splits=("train",)),
           "Pipe mode: set the hyperparameter num_training_samples")


@pytest.mark.parametrize("workers", ["0", "1"])
def test_mask_of_another_size_names_the_sample(tmp_path: Path, gt_data: Path,
                                               workers: str) -> None:
    """Checked in the loader worker that decodes the pair; the job's error is the problem
    itself, not a worker's traceback."""
    data = tmp_path / "data"
    synthetic.build_ground_truth(data, train=3, validation=0, size=32)
    path = data / "images" / "labels" / "train_0001.png"
    Image.open(path).resize((16, 16), Image.Resampling.NEAREST).save(path)
    message = _fails(_pipe_job(tmp_path / "job", data, 1, splits=("train",),
                               num_training_samples="3", num_workers=workers),
                     "^annotation 'shapes-ref' of train_0: sample 1 .* is 16x16 but its image")
    assert "'source-ref' of train_0: sample 1" in message and "32x32" in message
    assert "Traceback" not in message and "worker" not in message


def test_colour_pngs_without_the_metadata_attribute(tmp_path: Path, gt_data: Path) -> None:
    env = _pipe_job(tmp_path, gt_data, 1, splits=("train",), names=("source-ref", LABEL),
                    num_training_samples="8")
    _fails(env, r"'shapes-ref' of train_0: sample \d+ .*has mode RGB.*internal-color-map")


def test_class_at_or_above_num_classes(tmp_path: Path, gt_data: Path) -> None:
    _fails(_pipe_job(tmp_path, gt_data, 1, splits=("train",), num_training_samples="8",
                     num_classes="2"),
           r"'shapes-ref' of train_0: sample \d+ .*has class value\(s\) \[2\]")


def test_label_attribute_without_ref_suffix(tmp_path: Path, gt_data: Path) -> None:
    env = _pipe_job(tmp_path, gt_data, 0, splits=("train",), names=("source-ref", "shapes"),
                    num_training_samples="8")
    _fails(env, "label attribute 'shapes' does not end in '-ref'")


@pytest.mark.parametrize(("change", "message"), [
    ({"RecordWrapperType": "None"},
     "Pipe input mode with RecordWrapperType='None'.*need input_mode='File'"),
])
def test_channel_declarations_name_the_fix(tmp_path: Path, change: dict, message: str) -> None:
    base = make_opt_ml(tmp_path, {**FAST, "num_training_samples": "8"}, {},
                       input_config={"train": {**PIPE, **change}})
    _fails(TrainingEnv.from_base_dir(base), message)


def test_label_map_channel_must_be_file_mode(tmp_path: Path, gt_data: Path) -> None:
    base = make_opt_ml(tmp_path, {**FAST, "num_training_samples": "8"}, {},
                       input_config={"train": PIPE, "label_map": channel_config(None, "Pipe")})
    _fails(TrainingEnv.from_base_dir(base), "channel 'label_map' uses Pipe input mode")


def test_an_empty_stream_fails_the_epoch(tmp_path: Path, gt_data: Path) -> None:
    env = _pipe_job(tmp_path, gt_data, 0, splits=("train",), num_training_samples="8")
    (env.base_dir / "input" / "data" / "train_0").write_bytes(b"")
    _fails(env, "channel 'train' streamed no samples in epoch 0")


def test_a_resumed_epoch_restarts_from_the_first_streamed_pair(
        tmp_path: Path, gt_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = _pipe_job(tmp_path, gt_data, 2, splits=("train",), epochs="2",
                    num_training_samples="8", mini_batch_size="4", crop_size="32",
                    base_size="48")
    polls = iter([False] * 3 + [True])  # epoch 0: 2 batches + its end; then 1 batch
    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM at epoch 1"):
        run(env, lambda: next(polls))
    state = checkpoint.load(env.checkpoint_dir)
    assert state is not None
    assert (state["progress"]["epoch"], state["progress"]["batch_samples"]) == (1, 4)
    caplog.set_level("INFO")
    final = run(env, lambda: False)  # a new process: the stream starts again at train_0
    assert "Pipe mode: epoch 1 restarts from its first sample" in caplog.text
    assert "reading train_0" in caplog.text
    assert "but num_training_samples=" not in caplog.text  # the whole epoch was counted anew
    assert final["train:loss"] > 0


def test_a_pipe_job_as_sagemaker_sends_it_matches_file_mode(tmp_path: Path) -> None:
    """The seed's Ground Truth flow in Pipe mode: RecordWrapperType RecordIO, no AttributeNames
    anywhere and no hyperparameter naming them: each line streams the image, then its label PNG
    (palette indices). It reaches the File-mode manifest job's mIOU on the same data."""
    data = synthetic.build_ground_truth(tmp_path / "data", train=24, validation=8, size=48,
                                        palette_masks=True)
    hps = {"epochs": "12", "crop_size": "48", "base_size": "48", "num_training_samples": "24"}
    file_miou = run(gt_job(tmp_path / "file", data, **hps), lambda: False)["validation:mIOU"]
    base = make_opt_ml(tmp_path / "pipe", {**FAST, **hps, "pipe_wait_seconds": "60"}, {},
                       input_config={})
    command = [sys.executable, str(REPO / "local_test/pipe_emulator.py"), "--base-dir",
               str(base), "--configure", "--images", str(data / "images"),
               "--manifest", f"train={data / 'train/train.manifest'}",
               "--manifest", f"validation={data / 'validation/validation.manifest'}",
               "--", str(BIN / "train")]
    done = subprocess.run(command, env=train_env(base), capture_output=True, text=True,
                          timeout=600, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "2 records per sample: the image, then the label" in log
    config = json.loads((base / "input/config/inputdataconfig.json").read_text())
    assert all(set(channel) == SAGEMAKER_CHANNEL_KEYS for channel in config.values())
    pipe_miou = artifact.load_metadata(base / "model").metrics["validation:mIOU"]
    # Measured here: File 0.72, Pipe 0.77 (the training orders differ: a 256-pair shuffle
    # buffer in Pipe mode, a full permutation in File mode).
    assert file_miou >= 0.6
    assert pipe_miou >= file_miou - 0.1, (pipe_miou, file_miou)
