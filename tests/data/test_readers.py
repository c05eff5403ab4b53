"""Reader selection, labels, .lst lists and File-mode manifests, against a fake /opt/ml tree."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import channel_config, make_opt_ml, write_input_config
from tests.data.conftest import GT_LABEL, manifest_objects
from train import hyperparameters
from train.contract import TrainingEnv
from train.data.labels import LabelSpec, decode_all, parse_label_format
from train.data.readers import create_reader, select_format
from train.errors import UserError

PARAMS = hyperparameters.parse({})


def _env(tmp_path, channels, config=None, files=None):
    base = make_opt_ml(tmp_path, {}, dict.fromkeys(channels), input_config=config)
    for name in channels:
        (base / "input/data" / name).mkdir(parents=True, exist_ok=True)
    for relative, text in (files or {}).items():
        (base / "input/data" / relative).write_text(text)
    return TrainingEnv.from_base_dir(base)


def _cfg(content_type, mode="File", wrapper="None"):
    return channel_config(content_type, mode, wrapper=wrapper)


@pytest.mark.parametrize(("config", "files", "expected"), [
    ({"train": _cfg("application/x-recordio")}, {}, "recordio"),
    ({"train": _cfg("application/x-recordio", "Pipe")}, {}, "recordio"),
    ({"train": _cfg("application/x-recordio; label-format=class-id", "Pipe", "RecordIO")},
     {}, "manifest"),
    ({"train": _cfg(None, "Pipe", "RecordIO")}, {}, "manifest"),
    ({"train": _cfg("application/x-recordio")}, {"train/a.manifest": "{}"}, "manifest"),
    ({"train": _cfg("application/x-image"), "train_lst": _cfg("application/x-image")},
     {}, "lst"),
    ({"train": _cfg("application/x-image")}, {"train/x.manifest": "{}"}, "manifest"),
    ({"train": _cfg("image/jpeg")}, {}, "folder"),
    ({}, {"train/d.rec": ""}, "recordio"),
    ({}, {}, "folder"),
], ids=["rec", "rec-pipe", "pipe-recordio-wrapped", "pipe-wrapped-no-content-type",
        "manifest-in-recordio-channel", "lst",
        "manifest-file", "folder", "sniffed-rec", "default-folder"])
def test_reader_selection_rules(tmp_path, config, files, expected):
    channels = list(config) if config else ["train"]
    env = _env(tmp_path, channels, config, files)
    assert select_format(env, "train", PARAMS) == expected


def test_data_format_hyperparameter_overrides(tmp_path):
    env = _env(tmp_path, ["train"], {"train": _cfg("application/x-image")})
    params = hyperparameters.parse({"data_format": "recordio"})
    assert select_format(env, "train", params) == "recordio"


@pytest.mark.parametrize(("spec", "value", "target"), [
    (LabelSpec(num_classes=3), 2.0, 2),
    (LabelSpec(num_classes=3), [1], 1),
    (LabelSpec(True, "multi-hot", 3), [1, 0, 1], (0, 2)),
    (LabelSpec(True, "class-id", 3), [2, 0, 2], (0, 2)),
    (LabelSpec(True, "multi-hot", 3), 1, (1,)),  # a single number is a class id
])
def test_label_rules(spec, value, target):
    assert spec.target(value, "where") == target


@pytest.mark.parametrize(("spec", "value", "message"), [
    (LabelSpec(num_classes=3), 3, "label 3 is outside num_classes=3"),
    (LabelSpec(num_classes=3), 1.5, "not a whole number"),
    (LabelSpec(num_classes=3), [0, 1], "2 labels for one image, but multi_label=0"),
    (LabelSpec(True, "multi-hot", 3), [1, 0], "has 2 values but num_classes=3"),
    (LabelSpec(True, "multi-hot", 3), [1, 2, 0], "multi-hot labels are 0 or 1"),
    (LabelSpec(True, "class-id", 3), [0, 7], "label 7 is outside num_classes=3"),
])
def test_bad_labels_name_the_place(spec, value, message):
    with pytest.raises(UserError, match=r"^where: ") as info:
        spec.target(value, "where")
    assert message in str(info.value)


def test_num_classes_is_inferred_from_the_training_labels():
    assert decode_all([("a", 0.0), ("b", 4.0)], LabelSpec())[1] == 5
    assert decode_all([("a", [0, 1, 1])], LabelSpec(True, "multi-hot"))[1] == 3
    assert parse_label_format("application/x-recordio; label-format=class-id") == "class-id"
    assert parse_label_format("application/x-image") == "multi-hot"


def test_lst_reader_with_several_labels(tmp_path):
    lst = "1\t1\t0\t1\tcats/a.jpg\n2\t0\t1\t0\tdogs/b.jpg\n"
    config = {"train": _cfg("application/x-image"), "train_lst": _cfg("application/x-image")}
    env = _env(tmp_path, ["train", "train_lst"], config, {"train_lst/train.lst": lst})
    for relative in ("cats/a.jpg", "dogs/b.jpg"):
        path = env.channel_dir("train") / relative
        path.parent.mkdir(parents=True)
        path.write_bytes(b"image " + relative.encode())
    reader = create_reader(env, "train", hyperparameters.parse({"multi_label": "1"}))
    assert reader.targets() == [(0, 2), (1,)]
    assert reader.read(1).data == b"image dogs/b.jpg"
    assert reader.class_names == ["0", "1", "2"]


def test_manifest_reader_finds_images_and_class_names(tmp_path, groundtruth_dir, gt_images):
    config = {"train": _cfg("application/x-image"), "images": _cfg("application/x-image")}
    env = _env(tmp_path, ["train"], config)
    shutil.copy(groundtruth_dir / "output.manifest", env.channel_dir("train"))
    shutil.copytree(gt_images, env.channel_dir("images"), dirs_exist_ok=True)
    env = TrainingEnv.from_base_dir(env.base_dir)
    objects = manifest_objects(groundtruth_dir / "output.manifest")
    for params in (PARAMS, hyperparameters.parse({"source_ref_prefix": "s3://lab1-rawdata/"})):
        reader = create_reader(env, "train", params)
        assert reader.class_names == ["RH", "LH"]
        assert reader.targets() == [o[GT_LABEL] for o in objects]
        name = objects[5]["source-ref"].rsplit("/", 1)[1]
        assert reader.read(5).name == name
        assert reader.read(5).data == (gt_images / name).read_bytes()


def test_manifest_labels_as_strings_lists_and_keys_below_a_prefix(tmp_path):
    lines = [{"image-ref": "s3://b/photos/x/1.png", "class": "1"},
             {"image-ref": "s3://b/photos/y/2.png", "class": [0, 1], "other": 3}]
    env = _env(tmp_path, ["train", "train_images"], files={
        "train/t.jsonl": "".join(json.dumps(o) + "\n" for o in lines),
    })
    for relative in ("x/1.png", "y/2.png"):
        path = env.channel_dir("train_images") / relative
        path.parent.mkdir(parents=True)
        path.write_bytes(relative.encode())
    params = hyperparameters.parse({"multi_label": "1", "label_attribute": "class"})
    config = {"train": _cfg("application/x-image; label-format=class-id"),
              "train_images": _cfg("application/x-image")}
    write_input_config(env.base_dir, config)
    env = TrainingEnv.from_base_dir(env.base_dir)
    reader = create_reader(env, "train", params)
    assert reader.targets() == [(1,), (0, 1)]
    assert [reader.read(i).data for i in range(2)] == [b"x/1.png", b"y/2.png"]


def test_attribute_names_written_by_our_own_tools_still_select_a_manifest(tmp_path):
    """SageMaker never writes AttributeNames; our tools may, and the reader honours them."""
    config = {"train": {**_cfg("application/x-recordio"), "AttributeNames": ["source-ref", "c"]}}
    base = make_opt_ml(tmp_path, {}, {"train": None}, input_config=config, own_tools=True)
    env = TrainingEnv.from_base_dir(base)
    assert env.channels["train"].attribute_names == ("source-ref", "c")
    assert select_format(env, "train", PARAMS) == "manifest"
