"""The training contract's channel description: exactly what SageMaker writes, nothing more.

SageMaker writes per channel in ``inputdataconfig.json`` only ``ContentType`` (when set),
``TrainingInputMode``, ``S3DistributionType`` and ``RecordWrapperType``. The test fixtures, the
Pipe-mode emulator and every test that writes the file go through ``write_input_config``, which
refuses anything else, so no test can pass on a field the platform never sends.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import (
    REFERENCE_DATA,
    REPO,
    channel_config,
    load_local_test_script,
    write_input_config,
)
from train.contract import SAGEMAKER_CHANNEL_KEYS


def test_the_channel_keys_are_the_ones_sagemaker_writes() -> None:
    assert {"ContentType", "TrainingInputMode", "S3DistributionType",
            "RecordWrapperType"} == SAGEMAKER_CHANNEL_KEYS
    assert set(channel_config()) == SAGEMAKER_CHANNEL_KEYS
    assert "ContentType" not in channel_config(None)  # written only when the job sets one


@pytest.mark.parametrize("key", ["AttributeNames", "S3DataType"])
def test_fixtures_refuse_keys_sagemaker_never_writes(tmp_path, key) -> None:
    with pytest.raises(AssertionError, match=f"SageMaker never writes.*{key}"):
        write_input_config(tmp_path, {"train": {**channel_config(), key: "x"}})


def test_fixtures_refuse_a_channel_missing_what_sagemaker_always_writes(tmp_path) -> None:
    with pytest.raises(AssertionError, match=r"SageMaker always writes.*S3DistributionType"):
        write_input_config(tmp_path, {"train": {"TrainingInputMode": "File",
                                                "RecordWrapperType": "None"}})


def test_the_pipe_emulator_configures_channels_as_sagemaker_does(tmp_path) -> None:
    emulator = load_local_test_script("pipe_emulator")
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(b"jpeg")
    manifest = tmp_path / "m.manifest"
    manifest.write_text(json.dumps({"source-ref": "s3://b/a.jpg", "job": 1}) + "\n")
    assert emulator.main([
        "--base-dir", str(tmp_path / "job"), "--configure", "--epochs", "0",
        "--rec", f"train={REFERENCE_DATA / 'recordio/digits_train.rec'}",
        "--manifest", f"validation={manifest}", "--images", str(images),
    ]) == 0
    config = json.loads((tmp_path / "job/input/config/inputdataconfig.json").read_text())
    assert config == {
        "train": {"ContentType": "application/x-recordio", "TrainingInputMode": "Pipe",
                  "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
        "validation": {"ContentType": "application/x-recordio", "TrainingInputMode": "Pipe",
                       "S3DistributionType": "FullyReplicated", "RecordWrapperType": "RecordIO"},
    }


# A write of inputdataconfig.json anywhere but the two helpers that check it.
DIRECT_WRITE = re.compile(r"inputdataconfig\.json[\"']\)?\s*\.write_(text|bytes)|"
                          r"open\([^)]*inputdataconfig\.json[^)]*[\"']w")


def test_no_test_or_local_script_writes_the_file_around_the_check() -> None:
    allowed = {REPO / "tests/conftest.py"}
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("tests", "local_test")
        for path in (REPO / folder).rglob("*.py")
        if path not in allowed and DIRECT_WRITE.search(path.read_text())
    ]
    assert offenders == []


def test_a_tuning_trial_keeps_its_checkpoints_in_its_own_folder(tmp_path, monkeypatch) -> None:
    from tests.conftest import make_opt_ml
    from train.contract import TrainingEnv

    monkeypatch.setenv("TRAINING_JOB_NAME", "tune-001-abc")
    plain = TrainingEnv.from_base_dir(make_opt_ml(tmp_path / "a", {"epochs": "1"}, {}))
    assert plain.checkpoint_dir == tmp_path / "a/checkpoints"
    trial = TrainingEnv.from_base_dir(make_opt_ml(
        tmp_path / "b", {"epochs": "1", "_tuning_objective_metric": "validation:accuracy"}, {}))
    assert trial.checkpoint_dir == tmp_path / "b/checkpoints/tune-001-abc"
