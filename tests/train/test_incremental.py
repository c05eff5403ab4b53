"""Incremental training: the built-ins' ``model`` channel, with this image's own artifacts.

A second job started from the first job's ``model.tar.gz`` begins at the first job's accuracy;
a network that does not match fails naming both values; a hostile tarball is refused before
anything is read, and nothing is ever written outside the job tree.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from common import artifact
from tests.conftest import FAST_HYPERPARAMETERS, channel_config, make_opt_ml, run_train
from train import previous_model
from train.contract import MODEL_CONTENT_TYPE, TrainingEnv
from train.errors import UserError

HPS = {**FAST_HYPERPARAMETERS, "epochs": "3", "num_classes": "10"}


def pack_model(model_dir: Path, out: Path, *, dot_slash: bool = False) -> Path:
    """model.tar.gz as SageMaker packs /opt/ml/model: the directory's files at the root."""
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=("./" if dot_slash else "") + path.name)
    return out


def _job(root: Path, digits: Path, model_channel: Path | None, **hps: str) -> Path:
    channels = {"train": digits / "train", "validation": digits / "validation"}
    config = {name: channel_config() for name in channels}
    if model_channel is not None:
        channels["model"] = model_channel
        config["model"] = channel_config(MODEL_CONTENT_TYPE)
    return make_opt_ml(root, {**HPS, **hps}, channels, input_config=config)


@pytest.fixture(scope="module")
def first_job(digits_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = _job(tmp_path_factory.mktemp("first"), digits_small, None)
    result = run_train(base)
    assert result.returncode == 0, result.log[-3000:]
    return base


def test_a_second_job_starts_at_the_first_jobs_accuracy(first_job, digits_small, tmp_path):
    exported = artifact.load_metadata(first_job / "model").metrics["validation:accuracy"]
    channel = pack_model(first_job / "model", tmp_path / "model_channel", dot_slash=True)
    base = _job(tmp_path / "second", digits_small, channel, epochs="1")
    result = run_train(base)
    assert result.returncode == 0, result.log[-3000:]
    assert "incremental training: starting from" in result.log
    start = re.search(r"the previous model scores validation accuracy ([0-9.]+)", result.log)
    assert start is not None, result.log[-3000:]
    assert float(start.group(1)) == pytest.approx(exported, abs=1e-6)
    assert float(start.group(1)) > 0.5  # trained weights, not a fresh network (0.1)


def test_extracted_model_files_are_read_too(first_job, tmp_path):
    base = make_opt_ml(tmp_path, {}, {"model": first_job / "model"})
    previous = previous_model.load(TrainingEnv.from_base_dir(base))
    assert previous is not None and previous.metadata.num_layers == 18
    assert previous.state_dict.keys() == artifact.load_state_dict(first_job / "model").keys()


def test_a_different_network_fails_naming_both_values(first_job, digits_small, tmp_path):
    channel = pack_model(first_job / "model", tmp_path / "model_channel")
    base = _job(tmp_path / "job", digits_small, channel, num_layers="34",
                image_shape="3,64,64")
    result = run_train(base)
    assert result.returncode == 1, result.log[-2000:]
    failure = result.failure or ""
    assert failure.startswith("ClientError: incremental training needs the previous model's")
    assert "num_layers=18 in the previous model but num_layers=34 in this job" in failure
    assert "image_shape=3,32,32 in the previous model but image_shape=3,64,64" in failure
    assert "num_classes" not in failure  # the same: not named


# Hostile archives --------------------------------------------------------------------------
def _member(name: str, data: bytes = b"x", **fields: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


HOSTILE = {
    "traversal": ([_member("../../escaped.txt")], "member '../../escaped.txt' contains '..'"),
    "absolute": ([_member("/tmp/escaped.txt")], "member '/tmp/escaped.txt' is an absolute"),
    "symlink-absolute": ([_member("metadata.json", b"", type=tarfile.SYMTYPE,
                                  linkname="/etc/passwd")],
                         "is a link to the absolute path '/etc/passwd'"),
    "symlink-out": ([_member("a/link", b"", type=tarfile.SYMTYPE, linkname="../../x")],
                    "is a link to '../../x', outside the archive"),
    "hardlink-out": ([_member("link", b"", type=tarfile.LNKTYPE, linkname="../x")],
                     "is a link to '../x', outside the archive"),
    "device": ([_member("dev", b"", type=tarfile.CHRTYPE, devmajor=1, devminor=3)],
               "is a device, FIFO or other special file"),
    "fifo": ([_member("pipe", b"", type=tarfile.FIFOTYPE)], "device, FIFO or other special"),
    # 3 MiB of zeros: a few KB compressed, over the 1 MiB cap set below.
    "oversized": ([_member("model.safetensors", bytes(3 << 20))],
                  "its members add up to more than 0.00 GiB"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_tarball_is_refused_and_nothing_is_written(case, tmp_path, monkeypatch):
    monkeypatch.setenv(previous_model.MAX_BYTES_ENV, str(1 << 20))
    members, message = HOSTILE[case]
    channel = tmp_path / "job/input/data/model"
    _archive(channel / "model.tar.gz", members)
    base = make_opt_ml(tmp_path / "job", {}, {})
    before = sorted(p for p in tmp_path.parent.rglob("*") if tmp_path not in p.parents)
    inside = sorted(tmp_path.rglob("*"))
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        previous_model.load(TrainingEnv.from_base_dir(base))
    assert "Nothing was extracted" in str(caught.value) or case == "oversized"
    assert sorted(tmp_path.rglob("*")) == inside  # nothing written in the job tree
    assert sorted(p for p in tmp_path.parent.rglob("*") if tmp_path not in p.parents) == before
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_a_hostile_tarball_fails_the_job(tmp_path, digits_small):
    channel = tmp_path / "model_channel"
    _archive(channel / "model.tar.gz", [_member("../../../escaped.txt")])
    result = run_train(_job(tmp_path / "job", digits_small, channel))
    assert result.returncode == 1
    assert (result.failure or "").startswith("ClientError: the 'model' channel's archive "
                                             "model.tar.gz is refused: member")
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_model_of_another_task_is_refused(first_job, tmp_path):
    base = make_opt_ml(tmp_path, {}, {"model": pack_model(first_job / "model", tmp_path / "m")})
    previous = previous_model.load(TrainingEnv.from_base_dir(base))
    assert previous is not None
    with pytest.raises(UserError, match="holds a image_classification model; this job trains "
                                        "semantic_segmentation"):
        previous_model.require_same(previous, "semantic_segmentation", [])
