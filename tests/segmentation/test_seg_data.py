"""Data checks: every bad input fails before training with the file's name and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.segmentation.conftest import seg_job
from train.errors import UserError
from train.segmentation import run
from train.segmentation.data import LabelMap, read_label_map


def _fails(tmp_path: Path, data: Path, message: str, **hps: str) -> str:
    env = seg_job(tmp_path / "job", data, epochs="1", **hps)
    with pytest.raises(UserError, match=message) as caught:
        run(env, lambda: False)
    return str(caught.value)


def test_label_map_scale_then_map() -> None:
    table = LabelMap(scale=2, mapping=((50, 1),)).lookup_table()
    assert table[100] == 1 and table[101] == 1 and table[7] == 3 and table[255] == 255


def test_mask_size_must_match_image(tmp_path: Path, tiny_data: Path) -> None:
    mask = tiny_data / "train_annotation" / "train_0001.png"
    Image.open(mask).crop((0, 0, 60, 64)).save(mask)
    message = _fails(tmp_path, tiny_data, "must have its image's exact size")
    assert "train_0001.png is 60x64" in message


def test_image_without_annotation(tmp_path: Path, tiny_data: Path) -> None:
    (tiny_data / "train_annotation" / "train_0000.png").unlink()
    message = _fails(tmp_path, tiny_data, "have no annotation")
    assert "train_0000.jpg" in message and "train_annotation" in message


def test_missing_annotation_channel(tmp_path: Path, tiny_data: Path) -> None:
    env = seg_job(tmp_path / "job", tiny_data, channels=("train", "label_map"), epochs="1")
    with pytest.raises(UserError, match="channel 'train_annotation' is missing"):
        run(env, lambda: False)


def test_label_at_or_above_num_classes(tmp_path: Path, tiny_data: Path) -> None:
    mask = tiny_data / "train_annotation" / "train_0000.png"
    values = np.array(Image.open(mask))
    values[0, 0] = 7
    Image.fromarray(values).save(mask)  # grayscale (L) masks are read the same way
    message = _fails(tmp_path, tiny_data, r"class value\(s\) \[7\]")
    assert "train_0000.png" in message and "num_classes=3" in message


def test_without_the_label_map_stored_values_are_out_of_range(tmp_path: Path,
                                                              tiny_data: Path) -> None:
    (tiny_data / "label_map" / "train_label_map.json").unlink()
    _fails(tmp_path, tiny_data, r"\[100, 200\].*add a label_map channel")


def test_rgb_masks_are_refused(tmp_path: Path, tiny_data: Path) -> None:
    mask = tiny_data / "train_annotation" / "train_0000.png"
    Image.open(mask).convert("RGB").save(mask)
    _fails(tmp_path, tiny_data, "has mode RGB; save masks as 8-bit palette")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not valid JSON"),
    (json.dumps({"scale": 0}), "scale=0 must be an integer 1-255"),
    (json.dumps({"map": {"x": 1}}), "entry 'x': 1 must map an integer"),
    (json.dumps({"map": {"3": 300}}), "must map an integer 0-255"),
    (json.dumps({"remap": {}}), "must be an object with 'scale' and/or 'map'"),
    (json.dumps([1, 2]), "must be an object with 'scale' and/or 'map'"),
])
def test_malformed_label_map(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "train_label_map.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as caught:
        read_label_map(path)
    assert str(path) in str(caught.value)


def test_malformed_label_map_fails_the_job(tmp_path: Path, tiny_data: Path) -> None:
    (tiny_data / "label_map" / "train_label_map.json").write_text('{"map": [1]}')
    _fails(tmp_path, tiny_data, "train_label_map.json: 'map' must be an object")


def test_missing_pretrained_weights_fail_clearly(tmp_path: Path, tiny_data: Path) -> None:
    message = _fails(tmp_path, tiny_data, "no ImageNet weights for resnet18",
                     use_pretrained_model="1")
    assert "'weights' channel" in message
