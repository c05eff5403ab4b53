"""``launch.deploy``, ``launch.invoke`` and ``launch.transform`` against the emulated API.

moto keeps models, endpoint configs, endpoints and transform jobs as sent, and answers
InvokeEndpoint with results queued through ``/moto-api/static/sagemaker/endpoint-results``; it
runs no container, so the answers here are the serve command's documented formats.
moto's limits: endpoint configs accept only older instance types (no ml.g5), and
InvokeEndpoint decodes the body as UTF-8, so the "images" sent here are ASCII stand-ins.
"""

from __future__ import annotations

import io
import json

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from launch import delete, deploy, invoke, transform
from serve import protobuf_record
from tests.launch.conftest import BUCKET, IMAGE, REGION, ROLE, SESSION_ARGS

REGION_ARGS = ["--region", REGION]

SERVE_IMAGE = IMAGE.replace("sm-vision-train", "sm-vision-serve")


def _trained_job() -> str:
    """A finished training job (moto completes jobs at once) with the training image."""
    boto3.client("sagemaker", region_name=REGION).create_training_job(
        TrainingJobName="digits", RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                        "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})
    return "digits"


def test_deploy_a_training_job_on_its_own_image_with_server_settings(aws, capsys):
    job = _trained_job()
    assert deploy.main([
        *SESSION_ARGS, "--role", ROLE, "--training-job", job, "--endpoint-name", "digits",
        "--instance-type", "ml.g4dn.2xlarge", "--instance-count", "2", "--workers", "2",
        "--timeout", "90", "--max-payload-mb", "12", "--env", "EXTRA=1",
        "--no-wait",  # the SDK sleeps 30 s before its first look at the endpoint
    ]) == 0
    model = aws.call("CreateModel")
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == (
        f"s3://{BUCKET}/digits/output/model.tar.gz")
    assert model["PrimaryContainer"]["Environment"] == {
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "90",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "12", "EXTRA": "1"}
    assert model["ExecutionRoleArn"] == ROLE
    variant = aws.call("CreateEndpointConfig")["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.g4dn.2xlarge", 2)
    assert variant["ModelName"] == model["ModelName"]
    assert aws.call("CreateEndpoint")["EndpointName"] == "digits"
    status = boto3.client("sagemaker", region_name=REGION).describe_endpoint(
        EndpointName="digits")["EndpointStatus"]
    assert status == "InService"
    assert "endpoint: digits" in capsys.readouterr().out


def test_deploy_a_model_tar_gz_on_the_serving_image(aws):
    assert deploy.main([
        *SESSION_ARGS, "--role", ROLE, "--model-data", "s3://models/digits/model.tar.gz",
        "--image-uri", SERVE_IMAGE, "--endpoint-name", "digits-serve", "--no-wait",
        "--instance-type", "ml.g4dn.xlarge",
    ]) == 0
    container = aws.call("CreateModel")["PrimaryContainer"]
    assert (container["Image"], container["ModelDataUrl"]) == (
        SERVE_IMAGE, "s3://models/digits/model.tar.gz")
    assert "Environment" not in container or container["Environment"] == {}


def test_deploy_needs_an_image_for_a_bare_model_tar_gz(aws, capsys):
    assert deploy.main([*SESSION_ARGS, "--role", ROLE, "--model-data", "s3://m/model.tar.gz"]
                       ) == 1
    assert "--image-uri is required" in capsys.readouterr().err


def _verbose(label: str, probability: float) -> str:
    return json.dumps({
        "prediction": [probability, 1 - probability], "labels": [label, "other"],
        "predicted_label": label,
        "top_k": [{"label": label, "probability": probability},
                  {"label": "other", "probability": 1 - probability}],
    })


def test_invoke_sends_each_image_and_prints_the_top_k_labels(aws, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"PNG first")
    (folder / "b.jpg").write_bytes(b"JPEG second")
    (folder / "notes.txt").write_text("not an image")
    aws.post("/moto-api/static/sagemaker/endpoint-results", {"results": [
        {"Body": _verbose("7", 0.97), "ContentType": "application/json"},
        {"Body": _verbose("1", 0.61), "ContentType": "application/json"},
    ]})
    assert invoke.main([*REGION_ARGS, "--endpoint-name", "digits", str(folder),
                        "--top-k", "2"]) == 0
    sent = [r for r in aws.requests() if r["url"].endswith("/endpoints/digits/invocations")]
    assert [r["body"] for r in sent] == [b"PNG first", b"JPEG second"]
    for request in sent:
        assert request["headers"]["Content-Type"] == "application/x-image"
        assert request["headers"]["Accept"] == "application/json; verbose=true"
        assert request["headers"]["X-Amzn-Sagemaker-Custom-Attributes"] == "top_k=2"
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == f"{folder / 'a.png'}: 7 (0.970)  other (0.030)"
    assert out[-1] == f"{folder / 'b.jpg'}: 1 (0.610)  other (0.390)"


def test_invoke_saves_segmentation_masks(aws, tmp_path):
    image = tmp_path / "street.jpg"
    image.write_bytes(b"JPEG street")
    aws.post("/moto-api/static/sagemaker/endpoint-results", {"results": [
        {"Body": "PNG-MASK", "ContentType": "image/png"}]})
    assert invoke.main([*REGION_ARGS, "--endpoint-name", "roads", str(image),
                        "--accept", "image/png", "--out-dir", str(tmp_path / "masks")]) == 0
    assert (tmp_path / "masks" / "street.png").read_bytes() == b"PNG-MASK"
    sent = [r for r in aws.requests() if r["url"].endswith("/endpoints/roads/invocations")]
    assert sent[0]["headers"]["Accept"] == "image/png"


def test_transform_jsonlines_batches_with_a_new_model(aws, capsys):
    job = _trained_job()
    assert transform.main([
        *SESSION_ARGS, "--role", ROLE, "--training-job", job,
        "--input", "s3://data/batch/jsonl/", "--input-format", "jsonlines",
        "--output", "s3://data/batch/out/", "--max-payload", "6",
        "--max-concurrent-transforms", "4", "--verbose", "--job-name", "digits-batch",
    ]) == 0
    request = aws.call("CreateTransformJob")
    assert request["TransformJobName"] == "digits-batch"
    assert request["ModelName"] == aws.call("CreateModel")["ModelName"]
    assert request["BatchStrategy"] == "MultiRecord"
    assert request["MaxPayloadInMB"] == 6
    assert request["MaxConcurrentTransforms"] == 4
    source = request["TransformInput"]
    assert source["DataSource"]["S3DataSource"] == {"S3DataType": "S3Prefix",
                                                    "S3Uri": "s3://data/batch/jsonl/"}
    assert (source["ContentType"], source["SplitType"]) == ("application/jsonlines", "Line")
    assert request["TransformOutput"] == {
        "S3OutputPath": "s3://data/batch/out/", "Accept": "application/jsonlines; verbose=true",
        "AssembleWith": "Line"}
    assert "transform job: digits-batch" in capsys.readouterr().out


def test_transform_image_files_with_an_existing_model(aws):
    boto3.client("sagemaker", region_name=REGION).create_model(
        ModelName="digits-model", ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": SERVE_IMAGE, "ModelDataUrl": "s3://m/model.tar.gz"})
    assert transform.main([
        *SESSION_ARGS, "--model", "digits-model", "--input", "s3://data/batch/images/",
    ]) == 0
    assert len(aws.calls("CreateModel")) == 1  # the test's own
    request = aws.call("CreateTransformJob")
    assert request["ModelName"] == "digits-model"
    assert request["BatchStrategy"] == "SingleRecord"
    assert request["TransformInput"]["ContentType"] == "application/x-image"
    assert request["TransformInput"].get("SplitType", "None") == "None"
    assert request["TransformOutput"]["Accept"] == "application/jsonlines"


def test_invoke_sends_the_content_type_given(aws, tmp_path):
    image = tmp_path / "dog.jpg"
    image.write_bytes(b"JPEG dog")
    aws.post("/moto-api/static/sagemaker/endpoint-results", {"results": [
        {"Body": _verbose("Labrador", 0.9), "ContentType": "application/json"}]})
    assert invoke.main([*REGION_ARGS, "--endpoint-name", "dogs", str(image),
                        "--content-type", "image/jpeg"]) == 0
    sent = [r for r in aws.requests() if r["url"].endswith("/endpoints/dogs/invocations")]
    assert sent[0]["headers"]["Content-Type"] == "image/jpeg"


def test_top_k_ranks_the_built_in_plain_list_answer(aws, tmp_path, capsys):
    image = tmp_path / "7.png"
    image.write_bytes(b"PNG seven")
    probabilities = [0.01, 0.1, 0.02, 0.03, 0.04, 0.05, 0.06, 0.5, 0.09, 0.1]
    aws.post("/moto-api/static/sagemaker/endpoint-results", {"results": [
        {"Body": json.dumps(probabilities), "ContentType": "application/json"}]})
    assert invoke.main([*REGION_ARGS, "--endpoint-name", "digits", str(image),
                        "--accept", "application/json", "--top-k", "3"]) == 0
    # Ties keep class order, as the server's verbose answer ranks them.
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{image}: 7 (0.500)  1 (0.100)  9 (0.100)")


def _segmentation_protobuf(probabilities: np.ndarray) -> bytes:
    """What the serving image answers for Accept: application/x-protobuf (one image)."""
    record = protobuf_record.record({
        "shape": protobuf_record.int32_tensor(list(probabilities.shape)),
        "target": protobuf_record.float32_tensor(probabilities)})
    return protobuf_record.recordio_frame(record)


def test_invoke_saves_protobuf_answers_and_summarises_them(aws, tmp_path, monkeypatch, capsys):
    # moto answers InvokeEndpoint with text only, so the runtime client is stubbed here.
    image = tmp_path / "street.jpg"
    image.write_bytes(b"JPEG street")
    probabilities = np.zeros((1, 3, 2, 4), dtype=np.float32)
    probabilities[0, 0, :, :3] = 1  # 6 background pixels
    probabilities[0, 2, :, 3] = 1  # 2 pixels of class 2
    body = _segmentation_protobuf(probabilities)
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    stub = Stubber(client)
    stub.add_response("invoke_endpoint", {
        "Body": StreamingBody(io.BytesIO(body), len(body)),
        "ContentType": "application/x-protobuf"}, {
        "EndpointName": "roads", "Body": b"JPEG street", "ContentType": "application/x-image",
        "Accept": "application/x-protobuf", "CustomAttributes": "top_k=5"})
    stub.activate()
    monkeypatch.setattr(invoke, "runtime_client", lambda args: client)
    out_dir = tmp_path / "answers"
    assert invoke.main([*REGION_ARGS, "--endpoint-name", "roads", str(image),
                        "--accept", "application/x-protobuf", "--out-dir", str(out_dir)]) == 0
    stub.assert_no_pending_responses()
    assert (out_dir / "street.pb").read_bytes() == body
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{image}: saved to {out_dir / 'street.pb'}; 3 classes at 2x4: "
        "class 0 75.0%, class 2 25.0%")


def test_invoke_offers_no_unused_bucket_flag(capsys):
    with pytest.raises(SystemExit):
        invoke.main([*REGION_ARGS, "--bucket", "b", "--endpoint-name", "e", "x.png"])
    assert "unrecognized arguments: --bucket" in capsys.readouterr().err


def _endpoint(client, name: str, *models: str) -> None:
    client.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[
        {"VariantName": f"v{i}", "ModelName": model, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.xlarge"} for i, model in enumerate(models)])
    client.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def test_delete_removes_the_endpoint_its_config_and_its_model(aws, capsys):
    client = boto3.client("sagemaker", region_name=REGION)
    for model in ("digits-model", "shared-model"):
        client.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": SERVE_IMAGE, "ModelDataUrl": "s3://m/model.tar.gz"})
    _endpoint(client, "digits", "digits-model", "shared-model")
    _endpoint(client, "other", "shared-model")  # keeps shared-model in use
    assert delete.main([*REGION_ARGS, "--endpoint-name", "digits"]) == 0
    assert aws.calls("DeleteEndpoint")[-1] == {"EndpointName": "digits"}
    assert aws.calls("DeleteEndpointConfig")[-1] == {"EndpointConfigName": "digits-config"}
    assert aws.calls("DeleteModel") == [{"ModelName": "digits-model"}]
    assert [e["EndpointName"] for e in client.list_endpoints()["Endpoints"]] == ["other"]
    assert {m["ModelName"] for m in client.list_models()["Models"]} == {"shared-model"}
    assert "kept model shared-model" in capsys.readouterr().out


def test_delete_names_a_missing_endpoint(aws, capsys):
    assert delete.main([*REGION_ARGS, "--endpoint-name", "nope"]) == 1
    assert "no endpoint 'nope'" in capsys.readouterr().err
