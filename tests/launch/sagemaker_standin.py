"""Stand-ins for what moto cannot do: run a training job's container, and host an endpoint.

``run_training_job`` takes a CreateTrainingJob request as moto recorded it and does what
SageMaker does on one instance: writes ``input/config`` (hyperparameters as sent;
``inputdataconfig.json`` with the four keys SageMaker writes), fetches the data from (emulated)
S3, streams Pipe-mode augmented manifests the way SageMaker streams them (one RecordIO record
per attribute of ``AttributeNames``, image bytes first; ``local_test/pipe_emulator.py``), runs
the real ``train`` command in place of the container, and uploads ``model.tar.gz`` where
DescribeTrainingJob says it is. ``host_model`` downloads a model's ``ModelDataUrl`` and starts
the real ``serve`` command on it, as an endpoint's instance would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import boto3

from tests.conftest import REPO, write_input_config
from tests.serve.serving_helpers import Server

BIN = Path(sys.executable).parent


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# One request per transfer: moto's request recorder is not safe for the concurrent part
# requests of boto3's managed (multipart, threaded) transfers.
def _download(s3: Any, uri: str, target: Path) -> Path:
    bucket, key = _split(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
            out.write(chunk)
    return target


def _channel_config(channel: dict[str, Any], job_mode: str) -> dict[str, str]:
    """The channel's entry in inputdataconfig.json: what SageMaker writes, nothing more."""
    entry = {"TrainingInputMode": channel.get("InputMode", job_mode),
             "S3DistributionType": channel["DataSource"]["S3DataSource"].get(
                 "S3DataDistributionType", "FullyReplicated"),
             "RecordWrapperType": channel.get("RecordWrapperType", "None")}
    if "ContentType" in channel:
        entry["ContentType"] = channel["ContentType"]
    return entry


def _manifest(s3: Any, name: str, source: dict[str, Any], images: Path) -> Path:
    """Download an augmented manifest, and the objects it references to images/bucket/key."""
    manifest = _download(s3, source["S3Uri"], images.parent / "manifests" / f"{name}.manifest")
    for line in manifest.read_text().splitlines():
        if line.strip():
            ref = json.loads(line)[source["AttributeNames"][0]]
            _download(s3, ref, images / ref.removeprefix("s3://"))
    return manifest


def run_training_job(request: dict[str, Any], work: Path, timeout: float = 900) -> str:
    """Run the job; returns the S3 URI of its model.tar.gz (or fails with its failure file)."""
    s3 = boto3.client("s3")
    base = work / "opt_ml"
    config = base / "input" / "config"
    config.mkdir(parents=True)
    job_mode = request["AlgorithmSpecification"]["TrainingInputMode"]
    (config / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters", {})))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"]}))
    channels = request["InputDataConfig"]
    write_input_config(base, {c["ChannelName"]: _channel_config(c, job_mode) for c in channels})
    images = work / "images"
    feed: list[str] = []
    attribute_names = set()
    for channel in channels:
        source = channel["DataSource"]["S3DataSource"]
        mode = channel.get("InputMode", job_mode)
        if mode != "Pipe" or source["S3DataType"] != "AugmentedManifestFile":
            raise NotImplementedError(f"channel {channel['ChannelName']}: {mode} "
                                      f"{source['S3DataType']} is not emulated here")
        manifest = _manifest(s3, channel["ChannelName"], source, images)
        feed += ["--manifest", f"{channel['ChannelName']}={manifest}"]
        attribute_names.add(",".join(source["AttributeNames"]))
    assert len(attribute_names) == 1, attribute_names  # the emulator takes one list
    feed += ["--images", str(images), "--attribute-names", attribute_names.pop()]
    log = work / "train.log"
    with open(log, "wb") as out:
        proc = subprocess.run(
            [sys.executable, str(REPO / "local_test" / "pipe_emulator.py"), "--base-dir",
             str(base), *feed, "--", str(BIN / "train")],
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=subprocess.STDOUT,
            timeout=timeout)
    failure = base / "output" / "failure"
    assert proc.returncode == 0, (failure.read_text() if failure.exists() else "") + (
        log.read_text(errors="replace")[-3000:])
    artifact = work / "model.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        for path in sorted((base / "model").iterdir()):
            tar.add(path, arcname=path.name)
    output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    uri = f"{output}/{request['TrainingJobName']}/output/model.tar.gz"
    bucket, key = _split(uri)
    with open(artifact, "rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return uri


def host_model(create_model: dict[str, Any], work: Path) -> Server:
    """Start ``serve`` on the CreateModel request's model, as an endpoint instance would."""
    archive = _download(boto3.client("s3"), create_model["PrimaryContainer"]["ModelDataUrl"],
                        work / "model.tar.gz")
    model_dir = work / "opt_ml" / "model"
    model_dir.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir, filter="data")
    environment = create_model["PrimaryContainer"].get("Environment", {})
    server = Server(work / "opt_ml", work / "serve.log", environment)
    try:
        server.wait_until(ready=True)
    except BaseException:
        server.stop()
        raise
    return server
