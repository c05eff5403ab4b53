"""One channel holding split folders (the dog-breed upload): read as splits, never as classes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common import artifact
from tests.conftest import FAST_HYPERPARAMETERS, make_opt_ml, run_train
from train.data.splits import find_split_folders
from train.errors import UserError

BREEDS = [f"{i + 1:03d}.Breed_{i}" for i in range(10)]  # dogImages-style class folder names


def _dog_images(digits: Path, root: Path, splits: dict[str, str]) -> Path:
    """``root/<split folder>/<breed>/<image>`` from the digits splits (folder name: source)."""
    for folder, source in splits.items():
        for digit, breed in enumerate(BREEDS):
            shutil.copytree(digits / source / str(digit), root / folder / breed)
    return root


def test_a_channel_of_train_valid_test_folders_trains_on_the_right_splits(tmp_path,
                                                                          digits_small):
    upload = _dog_images(digits_small, tmp_path / "upload" / "dogImages",
                         {"train": "train", "valid": "validation", "test": "validation"})
    base = make_opt_ml(tmp_path / "job", {**FAST_HYPERPARAMETERS, "epochs": "2"},
                       {"training": upload.parent})
    result = run_train(base)
    assert result.returncode == 0, result.log[-3000:]
    assert ("channel training holds split folders: train=training/dogImages/train, "
            "validation=training/dogImages/valid, test=training/dogImages/test") in result.log
    assert "channel training/dogImages/train: 120 images in 10 classes" in result.log
    assert "Epoch[1] Validation-accuracy=" in result.log
    assert "Test set: Average loss: " in result.log
    meta = artifact.load_metadata(base / "model")
    assert meta.class_names == BREEDS  # the breeds, never train/valid/test
    assert "test:accuracy" in meta.metrics


def _layout(root: Path, folders: list[str]) -> Path:
    for folder in folders:
        (root / folder).mkdir(parents=True)
    return root


@pytest.mark.parametrize(("folders", "expected"), [
    (["train/a", "valid/a", "test/a"], {"train": "train", "validation": "valid",
                                        "test": "test"}),
    (["Training/a", "val/a"], {"train": "Training", "validation": "val"}),
    (["train/a"], {"train": "train"}),
    (["dogImages/train/a", "dogImages/validation/a"], {"train": "dogImages/train",
                                                       "validation": "dogImages/validation"}),
])
def test_split_folder_layouts(tmp_path, folders, expected):
    splits = find_split_folders(_layout(tmp_path / "ch", folders), "training")
    assert splits is not None
    assert {role: path.relative_to(tmp_path / "ch").as_posix()
            for role, path in splits.folders.items()} == expected


@pytest.mark.parametrize("folders", [["cat/1", "dog/1"], ["dogImages/cat", "dogImages/dog"],
                                     ["outer/inner/train"]])
def test_class_folders_are_not_split_folders(tmp_path, folders):
    assert find_split_folders(_layout(tmp_path / "ch", folders), "training") is None


@pytest.mark.parametrize(("folders", "message"), [
    (["train/a", "valid/a", "cats/a"], r"split folders \(train, valid\) beside other folders "
                                       r"\(cats\).*never read as classes"),
    (["train/a", "valid/a", "val/a"], r"2 folders for the validation split \(val, valid\)"),
    (["train/a", "training/a"], r"2 folders for the train split"),
    (["valid/a", "test/a"], "but no training split; add a folder named train or training"),
])
def test_ambiguous_layouts_fail_naming_the_folders(tmp_path, folders, message):
    with pytest.raises(UserError, match=message):
        find_split_folders(_layout(tmp_path / "ch", folders), "training")


def test_a_split_given_as_a_folder_and_as_a_channel_fails(tmp_path, digits_small):
    upload = _dog_images(digits_small, tmp_path / "upload", {"train": "train",
                                                             "valid": "validation"})
    base = make_opt_ml(tmp_path / "job", {**FAST_HYPERPARAMETERS, "epochs": "1"},
                       {"training": upload, "validation": digits_small / "validation"})
    result = run_train(base)
    assert result.returncode == 1
    assert ("the validation data is given twice: as channel 'validation' and as the folder "
            "training/valid of channel 'training'") in (result.failure or "")
