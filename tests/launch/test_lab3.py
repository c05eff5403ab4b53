"""Seed Lab 3 from the command line only, end to end against the emulated services.

raw images in S3 -> ``launch.label_job`` (labeling job, --wait --train) -> output manifest ->
``launch.label_workflow`` (split, upload, Pipe-mode training job) -> the job run ->
``launch.deploy`` -> ``launch.api`` -> the printed ``curl`` with the API key -> ``launch.api
--delete`` and ``launch.delete``.

What is real and what stands in (README "Launcher tests"):
- real: every launcher, in-process, through the real SDK and boto3; S3, Cognito, SageMaker's
  training/model/endpoint API, API Gateway's and IAM's control plane are moto's; the ``train``
  command (Pipe mode, fed as SageMaker feeds an augmented manifest), the ``serve`` command,
  the ``curl`` binary over HTTPS;
- stand-ins: Ground Truth (moto has none; a Stubber answers its calls, and the "workers" are
  this test, which labels each image of the job's input manifest with its true digit, written
  in Ground Truth's output format); the training platform running the job and hosting the
  endpoint (``tests/launch/sagemaker_standin.py``); API Gateway's data plane and SageMaker
  Runtime (``tests/launch/gateway.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from launch import api, delete, deploy, label_job
from tests.launch.conftest import (
    BUCKET,
    IMAGE,
    REGION,
    ROLE,
    TEAM_ARN,
    GroundTruth,
    described,
)
from tests.launch.gateway import Gateway, curl, serve_gateway
from tests.launch.sagemaker_standin import host_model, run_training_job

JOB = "lab3-digits"
CLASSES = ("0", "1")  # two classes, as the lab's RH and LH
OUTPUT_MANIFEST = f"s3://{BUCKET}/{JOB}/output/{JOB}/manifests/output/output.manifest"


def _upload_raw_images(digits: Path) -> dict[str, int]:
    """The lab's raw images: unlabeled files under one prefix. Returns each URI's digit."""
    s3 = boto3.client("s3", region_name=REGION)
    truth = {}
    for label, name in enumerate(CLASSES):
        for split in ("train", "validation"):
            for image in sorted((digits / split / name).glob("*.png")):
                key = f"lab3/raw/IMG_{len(truth):04d}.png"
                s3.upload_file(str(image), BUCKET, key)
                truth[f"s3://{BUCKET}/{key}"] = label
    return truth


def _workers(truth: dict[str, int], gt: GroundTruth) -> None:
    """When the launcher first asks for the job's status, the workers have labeled every image
    of its input manifest: Ground Truth's output manifest appears where it writes it."""
    done = []

    def label(params: dict[str, Any], **_: Any) -> None:
        if done:
            return
        request = gt.request("CreateLabelingJob")
        s3 = boto3.client("s3", region_name=REGION)
        bucket, key = request["InputConfig"]["DataSource"]["S3DataSource"][
            "ManifestS3Uri"].removeprefix("s3://").split("/", 1)
        lines = []
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines():
            ref = json.loads(line)["source-ref"]
            attribute = request["LabelAttributeName"]
            lines.append(json.dumps({
                "source-ref": ref, attribute: truth[ref],
                f"{attribute}-metadata": {
                    "confidence": 0.95, "job-name": f"labeling-job/{JOB}",
                    "class-name": CLASSES[truth[ref]], "human-annotated": "yes",
                    "creation-date": "2025-01-31T12:00:00.000000",
                    "type": "groundtruth/image-classification"}}))
        bucket, key = OUTPUT_MANIFEST.removeprefix("s3://").split("/", 1)
        s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode() + b"\n")
        done.append(True)

    gt.client.meta.events.register("provide-client-params.sagemaker.DescribeLabelingJob",
                                   label)


@pytest.mark.slow
def test_lab3_from_raw_images_to_an_api_answer(aws, gt, digits_small, digits_full, tmp_path,
                                               capsys, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    truth = _upload_raw_images(digits_small)

    # 1-3. Labeling job over the raw images, then (--train) split, upload, Pipe-mode job.
    gt.job_created(JOB)
    gt.respond("describe_labeling_job", described(
        JOB, "Completed", LabelCounters={"TotalLabeled": len(truth), "HumanLabeled": len(truth)},
        LabelingJobOutput={"OutputDatasetS3Uri": OUTPUT_MANIFEST}))
    _workers(truth, gt)
    assert label_job.main([
        "--region", REGION, "--bucket", BUCKET, "--role", ROLE,
        "--images", f"s3://{BUCKET}/lab3/raw/", "--labels", *CLASSES,
        "--instructions", "Which digit is this?", "--job-name", JOB,
        "--workteam-arn", TEAM_ARN, "--wait", "--poll-seconds", "0", "--train", "--",
        "--image-uri", IMAGE, "--instance-type", "ml.m5.xlarge", "--job-name", "lab3-train",
        "--s3-prefix", f"s3://{BUCKET}/lab3/manifests", "--out-dir", str(tmp_path / "split"),
        "--hp", "num_layers=18", "--hp", "image_shape=3,32,32", "--hp", "num_classes=2",
        "--hp", "epochs=4", "--hp", "mini_batch_size=8", "--hp", "optimizer=adam",
        "--hp", "learning_rate=0.001", "--hp", "seed=0", "--hp", "num_workers=0",
    ]) == 0
    gt.stub.assert_no_pending_responses()
    out = capsys.readouterr().out
    assert f"output manifest: {OUTPUT_MANIFEST}" in out
    job = gt.request("CreateLabelingJob")
    assert job["LabelingJobName"] == JOB
    training = aws.call("CreateTrainingJob")
    assert training["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    for channel in training["InputDataConfig"]:
        assert channel["DataSource"]["S3DataSource"]["AttributeNames"] == ["source-ref", JOB]

    # The job, run as SageMaker runs it: our train command reads the Pipe-mode stream.
    artifact = run_training_job(training, tmp_path / "training")
    described_job = boto3.client("sagemaker", region_name=REGION).describe_training_job(
        TrainingJobName="lab3-train")
    assert described_job["ModelArtifacts"]["S3ModelArtifacts"] == artifact

    # 4. Deploy the job's model; its instance is the serve command on that model.tar.gz.
    assert deploy.main(["--region", REGION, "--bucket", BUCKET, "--role", ROLE,
                        "--training-job", "lab3-train", "--endpoint-name", "lab3",
                        "--instance-type", "ml.m5.xlarge", "--no-wait"]) == 0
    server = host_model(aws.call("CreateModel"), tmp_path / "endpoint")
    try:
        # 5. The public API, and the curl command it prints, with a held-out image.
        assert api.main(["--region", REGION, "--endpoint-name", "lab3"]) == 0
        printed = next(line.removeprefix("try it: ") for line in
                       capsys.readouterr().out.splitlines() if line.startswith("try it: "))
        gateway = Gateway(REGION, aws.requests, {"lab3": f"http://127.0.0.1:{server.port}"})
        # Ten held-out images per class; the labels the "workers" gave reached the model
        # through the split manifests and the Pipe-mode stream (measured: 20 of 20 right).
        heldout = [(label, image) for label, name in enumerate(CLASSES)
                   for image in sorted((digits_full / "test" / name).glob("*.png"))[:10]]
        right = 0
        with serve_gateway(gateway, tmp_path) as (port, ca):
            for label, image in heldout:
                shutil.copy(image, tmp_path / "image.png")
                status, body = curl(printed, port, ca, data=tmp_path / "image.png",
                                    content_type="image/png")
                assert status == 200, body
                probabilities = json.loads(body)  # the built-in's answer: one per class
                assert len(probabilities) == 2
                assert sum(probabilities) == pytest.approx(1, abs=1e-4)
                right += max(range(2), key=probabilities.__getitem__) == label
            status, body = curl(printed, port, ca, data=tmp_path / "image.png",
                                content_type="image/png", drop_key=True)
            assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
        assert right >= 18, f"{right} of {len(heldout)} held-out digits right"
    finally:
        server.stop()

    # 6. Clean up as a user would.
    assert api.main(["--region", REGION, "--endpoint-name", "lab3", "--delete"]) == 0
    assert delete.main(["--region", REGION, "--endpoint-name", "lab3"]) == 0
    client = boto3.client("sagemaker", region_name=REGION)
    assert client.list_endpoints()["Endpoints"] == []
    assert client.list_models()["Models"] == []

