"""The dataset tools: split, rewrite, create-manifest, pack from a folder, stats."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from tests.data.conftest import GT_LABEL, draw_hand, manifest_objects
from train.data.labels import LabelSpec
from train.data.lst import parse_lst
from train.data.rec import RecordFileReader
from train.tools.__main__ import main as tools


def test_split_is_seeded_stratified_and_verbatim(groundtruth_dir, tmp_path):
    source = groundtruth_dir / "output.manifest"
    assert tools(["split", str(source), "--out-dir", str(tmp_path / "a")]) == 0
    assert tools(["split", str(source), "--out-dir", str(tmp_path / "b")]) == 0
    assert tools(["split", str(source), "--out-dir", str(tmp_path / "c"), "--seed", "1"]) == 0
    train = (tmp_path / "a/train.manifest").read_text().splitlines()
    validation = (tmp_path / "a/validation.manifest").read_text().splitlines()
    original = source.read_text().splitlines()

    assert (len(train), len(validation)) == (55, 14)  # 80/20, as the reference split
    assert sorted(train + validation) == sorted(original)  # lines copied verbatim
    assert train == [line for line in original if line in set(train)]  # original order
    per_class = Counter(json.loads(line)[GT_LABEL] for line in train)
    assert per_class == {0: 30, 1: 25}  # 80% of 38 and of 31
    assert (tmp_path / "b/train.manifest").read_text() == "\n".join(train) + "\n"
    assert (tmp_path / "c/train.manifest").read_text() != "\n".join(train) + "\n"


def test_rewrite_placeholder_restores_the_labeling_job(groundtruth_dir, tmp_path):
    out = tmp_path / "train.manifest"
    assert tools(["rewrite", str(groundtruth_dir / "train.manifest"), str(out),
                  "--replace", "lab#", "lab1"]) == 0
    originals = {o["source-ref"]: o for o in manifest_objects(
        groundtruth_dir / "output.manifest")}
    rewritten = manifest_objects(out)
    assert len(rewritten) == 55
    assert all(obj == originals[obj["source-ref"]] for obj in rewritten)


def test_rewrite_prefix_changes_only_image_references(groundtruth_dir, tmp_path):
    out = tmp_path / "moved.manifest"
    assert tools(["rewrite", str(groundtruth_dir / "output.manifest"), str(out),
                  "--prefix", "s3://lab1-rawdata/", "s3://my-bucket/hands/"]) == 0
    before = manifest_objects(groundtruth_dir / "output.manifest")
    after = manifest_objects(out)
    for old, new in zip(before, after, strict=True):
        assert new["source-ref"] == old["source-ref"].replace("s3://lab1-rawdata/",
                                                              "s3://my-bucket/hands/")
        assert {k: v for k, v in new.items() if k != "source-ref"} == {
            k: v for k, v in old.items() if k != "source-ref"}


def test_rewrite_refuses_to_produce_broken_json(tmp_path):
    (tmp_path / "in.manifest").write_text('{"source-ref": "s3://b/x.jpg", "c": 0}\n')
    code = tools(["rewrite", str(tmp_path / "in.manifest"), str(tmp_path / "out.manifest"),
                  "--replace", '"c"', "c"])
    assert code == 2
    assert not (tmp_path / "out.manifest").exists()


def test_create_manifest_from_a_folder_and_from_an_s3_listing(tmp_path, capsys):
    for name in ("cat/1.jpg", "cat/2.jpg", "dog/3.png", "notes.txt"):
        (tmp_path / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "photos" / name).write_bytes(b"x")
    assert tools(["create-manifest", "--folder", str(tmp_path / "photos"),
                  str(tmp_path / "folder.manifest"), "--s3-prefix", "s3://bucket/photos"]) == 0
    lines = manifest_objects(tmp_path / "folder.manifest")
    assert [(o["source-ref"], o["class"], o["class-metadata"]["class-name"]) for o in lines] == [
        ("s3://bucket/photos/cat/1.jpg", 0, "cat"), ("s3://bucket/photos/cat/2.jpg", 0, "cat"),
        ("s3://bucket/photos/dog/3.png", 1, "dog")]

    (tmp_path / "listing.txt").write_text(
        "2019-05-04 20:26:41      12345 photos/cat/1.jpg\n"
        "2019-05-04 20:26:42      12345 photos/dog/with space.jpg\n"
        "2019-05-04 20:26:43        100 photos/README.md\n"
        "2019-05-04 20:26:44      12345 other/cat/9.jpg\n"
        "                           PRE photos/\n")
    assert tools(["create-manifest", "--s3-listing", str(tmp_path / "listing.txt"),
                  str(tmp_path / "s3.manifest"), "--s3-prefix", "s3://bucket/photos/",
                  "--label-attribute", "animal"]) == 0
    lines = manifest_objects(tmp_path / "s3.manifest")
    assert [(o["source-ref"], o["animal"]) for o in lines] == [
        ("s3://bucket/photos/cat/1.jpg", 0), ("s3://bucket/photos/dog/with space.jpg", 1)]


def test_pack_a_class_folder_with_a_train_validation_split(tmp_path):
    for label, name in enumerate(("left", "right")):
        for i in range(10):
            path = tmp_path / "images" / name / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(draw_hand(label, i))
    assert tools(["pack", str(tmp_path / "images"), str(tmp_path / "out/hands"),
                  "--train-ratio", "0.8", "--resize", "40", "--encode", "jpg"]) == 0
    train = list(parse_lst(tmp_path / "out/hands_train.lst"))
    val = list(parse_lst(tmp_path / "out/hands_val.lst"))
    assert (len(train), len(val)) == (16, 4)
    assert {e.path.split("/")[0]: e.labels for e in train + val} == {
        "left": (0.0,), "right": (1.0,)}
    (tmp_path / "channel").mkdir()
    shutil.copy(tmp_path / "out/hands_train.rec", tmp_path / "channel")
    shutil.copy(tmp_path / "out/hands_train.idx", tmp_path / "channel")
    reader = RecordFileReader(tmp_path / "channel", "train", LabelSpec())
    assert reader.targets() == [int(e.labels[0]) for e in train]
    from common.preprocessing import decode_image

    assert min(decode_image(reader.read(0).data).size) == 40


def test_stats_reports_counts_sizes_and_problems(recordio_dir, tmp_path, capsys):
    assert tools(["stats", str(recordio_dir / "digits_train.rec"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 160
    assert report["per_class"]["0"] == 19
    assert report["image_sizes"] == {"32x32": 160}
    assert report["problems"] == []

    data = (recordio_dir / "digits_val.rec").read_bytes()
    (tmp_path / "cut.rec").write_bytes(data[: len(data) // 2])
    assert tools(["stats", str(tmp_path / "cut.rec"), "--num-classes", "5"]) == 1
    text = capsys.readouterr().out
    assert "cut.rec: byte offset" in text and "truncated record" in text
    assert "outside num_classes=5" in text


@pytest.mark.parametrize("argv", [["stats", "nothing.txt"], ["split", "missing.manifest"]])
def test_tools_fail_with_a_message_not_a_traceback(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nothing.txt").write_text("x")
    assert tools(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")
