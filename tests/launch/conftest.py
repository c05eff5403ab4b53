"""An emulated SageMaker API: ``moto_server`` on 127.0.0.1, recording every request it receives.

The launchers run in-process through the real SageMaker SDK and boto3, pointed at the server by
``AWS_ENDPOINT_URL``. Tests assert on the requests the server recorded (moto's
``/moto-api/recorder``), which is what SageMaker itself would have received; ``describe_*``
answers are not enough because moto stores only part of each request (it replaces a training
job's MetricDefinitions, for one).
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.conftest import free_port, stop_process

BIN = Path(sys.executable).parent
REGION = "us-east-1"
BUCKET = "sm-vision-test"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sm-vision-train:latest"
TELEMETRY_OPT_OUT = """\
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


@dataclass
class MotoServer:
    url: str
    recording: Path

    def post(self, path: str, payload: Any = None) -> bytes:
        data = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(self.url + path, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.read()

    def requests(self, target: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests (headers, url, decoded body), optionally one JSON API action."""
        entries = []
        for line in self.recording.read_text().splitlines():
            entry = json.loads(line)
            body = entry.get("body") or ""
            entry["body"] = base64.b64decode(body) if entry.get("body_encoded") else body.encode()
            if target is None or entry["headers"].get("X-Amz-Target") == target:
                entries.append(entry)
        return entries

    def calls(self, action: str) -> list[dict[str, Any]]:
        """The JSON bodies of every ``SageMaker.<action>`` request."""
        return [json.loads(e["body"]) for e in self.requests(f"SageMaker.{action}")]

    def call(self, action: str) -> dict[str, Any]:
        calls = self.calls(action)
        assert len(calls) == 1, f"expected one {action} request, got {len(calls)}"
        return calls[0]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    pytest.importorskip("sagemaker", reason="the launch extra is not installed "
                        "(pip install -e '.[launch]')")
    if not (BIN / "moto_server").exists():
        pytest.skip("moto_server is not installed (pip install -e '.[dev]')")
    # The SDK's config logger binds a handler to sys.stderr on import; import it now, under
    # the session's capture, not under one test's capsys (closed when that test ends).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        import sagemaker  # noqa: F401

    work = tmp_path_factory.mktemp("moto")
    port = free_port()
    recording = work / "recording.jsonl"
    log = open(work / "moto.log", "wb")  # noqa: SIM115 - closed after the process ends
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={"PATH": str(BIN), "MOTO_RECORDER_FILEPATH": str(recording)},
        stdout=log, stderr=subprocess.STDOUT,
    )
    server = MotoServer(f"http://127.0.0.1:{port}", recording)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(server.url + "/moto-api/data.json", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: "
                                       f"{(work / 'moto.log').read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield server
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture
def aws(moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A clean emulated account: empty backends, a bucket, a fresh recording, SDK env set."""
    moto_server.post("/moto-api/reset")
    moto_server.post("/moto-api/recorder/reset-recording")
    moto_server.post("/moto-api/recorder/start-recording")
    config = tmp_path / "sagemaker-config.yaml"
    config.write_text(TELEMETRY_OPT_OUT)
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    return moto_server


SESSION_ARGS = ["--region", REGION, "--bucket", BUCKET]
JOB_ARGS = [*SESSION_ARGS, "--role", ROLE, "--image-uri", IMAGE]


# Ground Truth ------------------------------------------------------------------------------
# moto has none of its calls: a botocore Stubber answers them (validating each request against
# SageMaker's API model) and every request is recorded for the tests to assert exactly.
ACCOUNT = "123456789012"
TEAM_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/hands-team"
NOW = datetime.datetime(2025, 1, 31, 12, 0, tzinfo=datetime.UTC)


class GroundTruth:
    """A stubbed SageMaker client that records every request it is given."""

    def __init__(self) -> None:
        self.client = boto3.client("sagemaker", region_name=REGION)
        self.stub = Stubber(self.client)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.client.meta.events.register("provide-client-params.sagemaker.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests.append((model.name, dict(params)))

    def request(self, operation: str) -> dict[str, Any]:
        found = [params for name, params in self.requests if name == operation]
        assert len(found) == 1, f"{operation}: {len(found)} requests"
        return found[0]

    def respond(self, operation: str, response: dict[str, Any]) -> None:
        self.stub.add_response(operation, response)

    def job_created(self, name: str) -> None:
        self.respond("create_labeling_job", {
            "LabelingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:labeling-job/{name}"})


@pytest.fixture
def gt(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[GroundTruth]:
    """launch.label_job's SageMaker client, stubbed (S3 and Cognito stay moto's)."""
    from launch import label_job

    truth = GroundTruth()
    monkeypatch.setattr(label_job, "sagemaker_client", lambda boto_session: truth.client)
    truth.stub.activate()
    yield truth
    truth.stub.deactivate()


def described(name: str, status: str, **extra: Any) -> dict[str, Any]:
    """DescribeLabelingJob's answer for job ``name`` (the fields its shape requires)."""
    return {
        "LabelingJobStatus": status, "CreationTime": NOW, "LastModifiedTime": NOW,
        "JobReferenceCode": "abc", "LabelingJobName": name, "LabelAttributeName": name,
        "LabelingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:labeling-job/{name}",
        "InputConfig": {"DataSource": {"S3DataSource": {
            "ManifestS3Uri": f"s3://{BUCKET}/{name}/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/{name}/output/"},
        "RoleArn": ROLE, "HumanTaskConfig": task_config(), "LabelCounters": {},
        **extra,
    }


def task_config() -> dict[str, Any]:
    """A HumanTaskConfig for DescribeLabelingJob answers (the shape requires one)."""
    return {"WorkteamArn": TEAM_ARN, "UiConfig": {"UiTemplateS3Uri": "s3://b/t"},
            "PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:PRE-x",
            "TaskTitle": "t", "TaskDescription": "d", "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 300, "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": "arn:aws:lambda:us-east-1:432418664414:"
                                                    "function:ACS-x"}}
