"""``launch.api``: the REST API, role, usage plan and key it creates, and how that API behaves.

API Gateway's and IAM's requests go to moto and are asserted as recorded. moto does not run
the API, so ``tests/launch/gateway.py`` runs it from moto's state (API key, usage plan,
throttle, role policy, binary media types, AWS integration) in front of a small echo server
standing in for the endpoint's container; the printed ``curl`` command is run for real.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import boto3
import pytest

from launch import api
from tests.launch.conftest import REGION, ROLE, MotoServer
from tests.launch.gateway import Gateway, curl, serve_gateway

ACCOUNT = "123456789012"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/digits"
ARGS = ["--region", REGION, "--endpoint-name", "digits"]
# Bytes that are not UTF-8: they survive only as a binary media type.
IMAGE = b"\x89PNG\r\n\x1a\n\xff\xfe" + bytes(range(256))


def _rest(aws: MotoServer, method: str, path_end: str) -> list[dict]:
    return [json.loads(r["body"]) for r in aws.requests()
            if r["method"] == method and r["url"].split("?")[0].endswith(path_end)]


def _iam(aws: MotoServer, action: str) -> list[dict[str, str]]:
    found = []
    for request in aws.requests():
        form = parse_qs(request["body"].decode(errors="replace"))
        if form.get("Action") == [action]:
            found.append({k: v[0] for k, v in form.items()})
    return found


@pytest.fixture
def endpoint(aws) -> str:
    client = boto3.client("sagemaker", region_name=REGION)
    client.create_model(ModelName="digits-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "serve:latest", "ModelDataUrl": "s3://m/model.tar.gz"})
    client.create_endpoint_config(EndpointConfigName="digits-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "digits-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.xlarge"}])
    client.create_endpoint(EndpointName="digits", EndpointConfigName="digits-config")
    return "digits"


def _printed(out: str, label: str) -> str:
    return next(line.split(": ", 1)[1] for line in out.splitlines()
                if line.startswith(f"{label}: "))


def test_the_api_role_plan_and_key_sent(aws, endpoint, capsys):
    assert api.main([*ARGS, "--rate-limit", "5", "--burst-limit", "10", "--quota", "1000",
                     "--quota-period", "DAY"]) == 0
    out = capsys.readouterr().out
    [role] = _iam(aws, "CreateRole")
    assert role["RoleName"] == "digits-api-invoke"
    assert json.loads(role["AssumeRolePolicyDocument"]) == {
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}
    [policy] = _iam(aws, "PutRolePolicy")
    # That endpoint and that action only.
    assert json.loads(policy["PolicyDocument"]) == {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": ENDPOINT_ARN}]}
    [rest_api] = _rest(aws, "POST", "/restapis")
    assert rest_api["binaryMediaTypes"] == [
        "image/jpeg", "image/png", "application/x-image", "application/x-npy",
        "application/x-protobuf", "application/x-recordio-protobuf"]
    assert rest_api["apiKeySource"] == "HEADER"
    [method] = _rest(aws, "PUT", "/methods/POST")
    assert (method["authorizationType"], method["apiKeyRequired"]) == ("NONE", True)
    [integration] = _rest(aws, "PUT", "/methods/POST/integration")
    assert integration == {
        "type": "AWS", "httpMethod": "POST",
        "uri": f"arn:aws:apigateway:{REGION}:runtime.sagemaker:path/endpoints/digits/invocations",
        "credentials": f"arn:aws:iam::{ACCOUNT}:role/digits-api-invoke",
        "requestParameters": {
            "integration.request.header.Content-Type": "method.request.header.Content-Type",
            "integration.request.header.Accept": "method.request.header.Accept"},
        "passthroughBehavior": "WHEN_NO_MATCH", "timeoutInMillis": 29000}
    api_id = boto3.client("apigateway", region_name=REGION).get_rest_apis()["items"][0]["id"]
    [plan] = _rest(aws, "POST", "/usageplans")
    assert plan["apiStages"] == [{"apiId": api_id, "stage": "prod"}]
    assert plan["throttle"] == {"rateLimit": 5.0, "burstLimit": 10}
    assert plan["quota"] == {"limit": 1000, "period": "DAY"}
    [key] = _rest(aws, "POST", "/apikeys")
    assert (key["name"], key["enabled"]) == ("digits-api-key", True)
    url = f"https://{api_id}.execute-api.{REGION}.amazonaws.com/prod/predict"
    assert _printed(out, "invoke URL") == url
    key_value = _printed(out, "API key")
    assert _printed(out, "API key id").startswith(
        boto3.client("apigateway", region_name=REGION).get_api_keys()["items"][0]["id"])
    assert _printed(out, "try it") == (
        f"curl -X POST {url} -H 'x-api-key: {key_value}' -H 'Content-Type: image/jpeg' "
        "-H 'Accept: application/json' --data-binary @image.jpg")


class Echo(BaseHTTPRequestHandler):
    """Stands in for the endpoint's container: answers what it received."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = json.dumps({"path": self.path, "content_type": self.headers["Content-Type"],
                             "accept": self.headers["Accept"],
                             "sha256": hashlib.sha256(body).hexdigest()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def container() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_the_api_takes_images_with_its_key_and_refuses_others(aws, endpoint, container,
                                                                tmp_path, capsys):
    assert api.main([*ARGS, "--rate-limit", "0.001", "--burst-limit", "2"]) == 0
    printed = _printed(capsys.readouterr().out, "try it")
    image = tmp_path / "digit.png"
    image.write_bytes(IMAGE)
    gateway = Gateway(REGION, aws.requests, {"digits": container})
    with serve_gateway(gateway, tmp_path) as (port, ca):
        status, body = curl(printed, port, ca, data=image, content_type="image/png")
        assert status == 200
        assert json.loads(body) == {"path": "/invocations", "content_type": "image/png",
                                    "accept": "application/json",
                                    "sha256": hashlib.sha256(IMAGE).hexdigest()}
        status, body = curl(printed, port, ca, data=image, content_type="image/png",
                            drop_key=True)
        assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
        # text/plain is no binary media type: API Gateway passes it as text, so the bytes
        # that are not UTF-8 do not arrive intact.
        status, body = curl(printed, port, ca, data=image, content_type="text/plain")
        assert status == 200
        assert json.loads(body)["sha256"] != hashlib.sha256(IMAGE).hexdigest()
        # Burst 2, then 0.001 requests/s: the third request with this key is throttled.
        status, body = curl(printed, port, ca, data=image, content_type="image/png")
        assert (status, json.loads(body)) == (429, {"message": "Too Many Requests"})


def test_delete_removes_the_api_plan_key_and_role(aws, endpoint, capsys):
    assert api.main(ARGS) == 0
    assert api.main([*ARGS, "--delete"]) == 0
    apigateway = boto3.client("apigateway", region_name=REGION)
    assert apigateway.get_rest_apis()["items"] == []
    assert apigateway.get_usage_plans()["items"] == []
    assert apigateway.get_api_keys()["items"] == []
    assert boto3.client("iam", region_name=REGION).list_roles()["Roles"] == []
    out = capsys.readouterr().out
    assert "deleted IAM role digits-api-invoke" in out
    assert api.main([*ARGS, "--delete"]) == 1
    assert "nothing named 'digits-api' to delete" in capsys.readouterr().err


def test_a_missing_endpoint_or_an_existing_api_is_refused(aws, endpoint, capsys):
    assert api.main(["--region", REGION, "--endpoint-name", "nope"]) == 1
    assert "Could not find endpoint" in capsys.readouterr().err
    assert api.main(ARGS) == 0
    capsys.readouterr()
    assert api.main(ARGS) == 1
    assert "exists already" in capsys.readouterr().err
    assert len(_iam(aws, "CreateRole")) == 1


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch) -> None:
    # urllib in the gateway stand-in talks to loopback only.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
