"""``launch.label_workflow`` (seed Lab 3) on the real Ground Truth manifest (reference data)."""

from __future__ import annotations

import json
from collections import Counter

import boto3

from launch import label_workflow
from tests.conftest import REFERENCE_DATA
from tests.launch.conftest import BUCKET, JOB_ARGS, REGION

OUTPUT_MANIFEST = REFERENCE_DATA / "groundtruth" / "output.manifest"
LABEL = "lab1-labeling-job"


def _labels(text: str) -> Counter:
    return Counter(json.loads(line)[LABEL] for line in text.splitlines() if line.strip())


def test_split_upload_and_train_on_pipe_mode_manifests(aws, tmp_path, capsys):
    out_dir = tmp_path / "manifests"
    assert label_workflow.main([
        str(OUTPUT_MANIFEST), *JOB_ARGS, "--out-dir", str(out_dir),
        "--s3-prefix", f"s3://{BUCKET}/lab3/manifests", "--job-name", "lab3",
        "--hp", "num_classes=2", "--hp", "epochs=10",
    ]) == 0
    # 80/20, stratified: each label keeps its share on both sides, no line lost or repeated.
    every = _labels(OUTPUT_MANIFEST.read_text())
    train_text = (out_dir / "train.manifest").read_text()
    validation_text = (out_dir / "validation.manifest").read_text()
    train, validation = _labels(train_text), _labels(validation_text)
    assert train + validation == every
    for label, count in every.items():
        assert train[label] == round(count * 0.8)
    # Both halves are in S3 where the channels point.
    s3 = boto3.client("s3", region_name=REGION)
    uploaded = s3.get_object(Bucket=BUCKET, Key="lab3/manifests/train.manifest")["Body"].read()
    assert uploaded.decode() == train_text
    request = aws.call("CreateTrainingJob")
    assert request["TrainingJobName"] == "lab3"
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    for name, channel in channels.items():
        source = channel["DataSource"]["S3DataSource"]
        assert source["S3Uri"] == f"s3://{BUCKET}/lab3/manifests/{name}.manifest"
        assert source["S3DataType"] == "AugmentedManifestFile"
        assert source["AttributeNames"] == ["source-ref", LABEL]
        assert channel["InputMode"] == "Pipe"
        assert channel["RecordWrapperType"] == "RecordIO"
        assert channel["ContentType"] == "application/x-recordio"
    assert request["HyperParameters"] == {
        "num_training_samples": str(sum(train.values())), "num_classes": "2", "epochs": "10"}
    assert "AttributeNames source-ref, lab1-labeling-job; Pipe mode" in capsys.readouterr().out


def test_a_manifest_without_a_clear_label_is_refused_before_any_upload(aws, tmp_path, capsys):
    manifest = tmp_path / "output.manifest"
    manifest.write_text(json.dumps({"source-ref": "s3://b/1.jpg", "a": 0, "b": 1}) + "\n")
    assert label_workflow.main([str(manifest), *JOB_ARGS, "--out-dir", str(tmp_path)]) == 1
    assert "label" in capsys.readouterr().err
    assert not aws.calls("CreateTrainingJob")


def test_the_manifest_can_be_the_labeling_jobs_s3_uri(aws, tmp_path):
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=BUCKET, Key="gt/output/output.manifest",
                  Body=OUTPUT_MANIFEST.read_bytes())
    s3.put_object(Bucket=BUCKET, Key="gt/output/output.manifest.old", Body=b"not json\n")
    out_dir = tmp_path / "manifests"
    assert label_workflow.main([
        f"s3://{BUCKET}/gt/output/output.manifest", *JOB_ARGS, "--out-dir", str(out_dir),
        "--job-name", "lab3-s3"]) == 0
    assert (out_dir / "output.manifest").read_bytes() == OUTPUT_MANIFEST.read_bytes()
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "output.manifest", "train.manifest", "validation.manifest"]
    assert aws.call("CreateTrainingJob")["TrainingJobName"] == "lab3-s3"
