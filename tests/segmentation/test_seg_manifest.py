"""Ground Truth augmented manifests (``-ref`` label PNGs, ``internal-color-map``) in File mode,
and every bad manifest input failing with the line or file and the fix."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common import artifact
from tests.conftest import make_opt_ml
from tests.segmentation.conftest import FAST, gt_job
from train.contract import TrainingEnv
from train.errors import UserError
from train.segmentation import is_segmentation_job, run, synthetic
from train.segmentation.data import load_split, read_mask

LABEL = f"{synthetic.GT_JOB}-ref"


@pytest.fixture(scope="session")
def gt_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.build_ground_truth(tmp_path_factory.mktemp("gt"), train=8, validation=4,
                                        size=48)


@pytest.fixture
def small_gt(tmp_path: Path) -> Path:
    """Three training lines, no validation: for tests that fail before training."""
    return synthetic.build_ground_truth(tmp_path / "gt", train=3, validation=0, size=32)


def _edit_manifest(data: Path, edit: Callable[[list[dict]], None]) -> None:
    path = data / "train" / "train.manifest"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    edit(lines)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _fails(tmp_path: Path, data: Path, message: str, **kwargs: str) -> str:
    env = gt_job(tmp_path / "job", data, channels=("train",), epochs="1", **kwargs)
    with pytest.raises(UserError, match=message) as caught:
        run(env, lambda: False)
    return str(caught.value)


def test_ground_truth_manifests_train_without_annotation_channels(tmp_path: Path,
                                                                  gt_data: Path) -> None:
    env = gt_job(tmp_path, gt_data, epochs="1", crop_size="48", base_size="48")
    assert "train_annotation" not in env.available_channels()
    final = run(env, lambda: False)
    assert 0.0 <= final["validation:mIOU"] <= 1.0
    assert artifact.load_metadata(env.model_dir).task == "semantic_segmentation"


def test_colour_label_pngs_become_class_ids(tmp_path: Path, gt_data: Path) -> None:
    env = gt_job(tmp_path, gt_data)
    split = load_split(env, "train", synthetic.NUM_CLASSES, required=True)
    assert split is not None and len(split.pairs) == 8
    rgb = {color: i for i, color in enumerate(synthetic.GT_COLORS)}
    for pair in split.pairs:
        assert pair.image.name.replace(".jpg", ".png") == pair.mask.name
        pixels = np.array(Image.open(pair.mask))
        expected = np.vectorize(lambda r, g, b: rgb[f"#{r:02x}{g:02x}{b:02x}"])(
            pixels[..., 0], pixels[..., 1], pixels[..., 2])
        assert np.array_equal(read_mask(pair.mask, pair.colors), expected)


def test_a_manifest_without_attribute_names_is_found_in_file_mode(tmp_path: Path,
                                                                  gt_data: Path) -> None:
    # Declared as plain File-mode channels (no AttributeNames): the .manifest file is enough.
    base = make_opt_ml(tmp_path, {**FAST},
                       {name: gt_data / name for name in ("train", "validation", "images")})
    split = load_split(TrainingEnv.from_base_dir(base), "validation", 3, required=False)
    assert split is not None and len(split.pairs) == 4


def test_ref_labels_select_segmentation(tmp_path: Path, small_gt: Path) -> None:
    """No segmentation hyperparameter: a File-mode manifest whose label is a `-ref` (a PNG),
    or attribute names naming one, make the job segmentation."""
    env = gt_job(tmp_path, small_gt, channels=("train",))
    bare = TrainingEnv(base_dir=env.base_dir, hyperparameters={"num_classes": "3"},
                       channels=env.channels)
    assert is_segmentation_job(bare)
    streamed = TrainingEnv(base_dir=tmp_path / "elsewhere", hyperparameters={
        "num_classes": "3", "attribute_names": f"source-ref,{LABEL}"})
    assert is_segmentation_job(streamed)
    assert not is_segmentation_job(TrainingEnv(base_dir=tmp_path / "elsewhere",
                                               hyperparameters={"num_classes": "3"}))


def test_line_without_the_label_attribute(tmp_path: Path, small_gt: Path) -> None:
    _edit_manifest(small_gt, lambda lines: lines[1].pop(LABEL))
    message = _fails(tmp_path, small_gt, f"train.manifest, line 2 has no label PNG attribute "
                                         f"'{LABEL}'")
    assert "AttributeNames" in message


def test_label_attribute_that_is_not_a_reference(tmp_path: Path, small_gt: Path) -> None:
    _edit_manifest(small_gt, lambda lines: lines[0].__setitem__(LABEL, 1))
    _fails(tmp_path, small_gt, "line 1: attribute 'shapes-ref' is 1, not a reference to the "
                               "label PNG")


def test_missing_label_png(tmp_path: Path, small_gt: Path) -> None:
    (small_gt / "images" / "labels" / "train_0002.png").unlink()
    message = _fails(tmp_path, small_gt, "1 file\\(s\\) named in the manifest are not in")
    assert "line 3: s3://bucket/labels/train_0002.png" in message
    assert "'train_images' or 'images'" in message


def test_colour_not_in_the_color_map(tmp_path: Path, small_gt: Path) -> None:
    path = small_gt / "images" / "labels" / "train_0001.png"
    pixels = np.array(Image.open(path))
    pixels[0, 0] = (255, 0, 0)
    Image.fromarray(pixels).save(path)
    message = _fails(tmp_path, small_gt, "has colour\\(s\\) #ff0000 that the internal-color-map "
                                         "does not list")
    assert "train_0001.png" in message and "#2ca02c=1" in message


def test_color_map_class_at_or_above_num_classes(tmp_path: Path, small_gt: Path) -> None:
    def remap(lines: list[dict]) -> None:
        colors = lines[0][f"{LABEL}-metadata"]["internal-color-map"]
        colors["7"] = colors.pop("2")

    _edit_manifest(small_gt, remap)
    _fails(tmp_path, small_gt, r"train_0000.png has class value\(s\) \[7\]")


@pytest.mark.parametrize(("color_map", "message"), [
    ({"0": {"hex-color": "white"}}, "entry '0'.*needs a class id 0-255 and a 'hex-color'"),
    ({"x": {"hex-color": "#ffffff"}}, "entry 'x'.*needs a class id 0-255"),
    ([], "internal-color-map is \\[\\], not an object"),
    ({"0": {"hex-color": "#ffffff"}, "1": {"hex-color": "#FFFFFF"}},
     "gives colour #ffffff to classes 0 and 1"),
])
def test_malformed_color_map(tmp_path: Path, small_gt: Path, color_map: object,
                             message: str) -> None:
    _edit_manifest(small_gt, lambda lines: lines[0][f"{LABEL}-metadata"].__setitem__(
        "internal-color-map", color_map))
    assert "train.manifest, line 1" in _fails(tmp_path, small_gt, message)


def test_colour_png_without_a_color_map(tmp_path: Path, small_gt: Path) -> None:
    _edit_manifest(small_gt, lambda lines: [line.pop(f"{LABEL}-metadata") for line in lines])
    _fails(tmp_path, small_gt, "has mode RGB.*need a Ground Truth manifest whose "
                               "'<label>-metadata' has an internal-color-map")


def test_train_command_writes_client_error(tmp_path: Path, small_gt: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from train import cli

    (small_gt / "images" / "raw" / "train_0000.jpg").unlink()
    env = gt_job(tmp_path / "job", small_gt, channels=("train",), epochs="1")
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(env.base_dir))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = cli.run_job()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == cli.EXIT_USER_ERROR
    failure = (env.base_dir / "output" / "failure").read_text()
    assert failure.startswith("ClientError: channel 'train': 1 file(s) named in the manifest")
