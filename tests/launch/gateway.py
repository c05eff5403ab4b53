"""A stand-in for API Gateway's data plane and SageMaker Runtime, on loopback, for tests.

moto keeps the REST APIs, usage plans, keys and IAM roles the launcher creates, but in server
mode it executes no API (and its own executor forwards AWS integrations to DynamoDB only). This
server executes them from moto's state, the way API Gateway documents it:

- HTTPS on 127.0.0.1 with a self-signed certificate for ``*.execute-api.<region>.amazonaws.com``
  (clients reach it with curl's ``--connect-to``/``--cacert``); the API comes from the Host;
- ``/<stage>/<path>`` must be a deployed stage and a resource with that method, else 403
  ``Missing Authentication Token``;
- ``apiKeyRequired``: ``x-api-key`` must be an enabled key of a usage plan bound to this stage,
  else 403 ``Forbidden``; the plan's throttle is a token bucket (rate, burst) per key: 429;
- the integration must be ``AWS`` on ``runtime.sagemaker:path/endpoints/<name>/invocations``
  with a role that trusts apigateway.amazonaws.com (else 500) and whose inline policy allows
  ``sagemaker:InvokeEndpoint`` on the endpoint's ARN (else SageMaker's 403 AccessDenied);
- bodies whose Content-Type is not a binary media type are passed as UTF-8 text (binary bytes
  are mangled, as API Gateway mangles them); ``requestParameters`` map the headers;
- SageMaker Runtime: the endpoint's container (``endpoints[name]``, e.g. the real ``serve``
  process) gets ``POST /invocations``; a container error becomes InvokeEndpoint's 424
  ``ModelError``; integration responses are selected by status code, Content-Type mapped back.

moto drops ``binaryMediaTypes`` from CreateRestApi, so they are read from the recorded request.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import re
import shlex
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

INTEGRATION = re.compile(r"^arn:aws:apigateway:(?P<region>[a-z0-9-]+):runtime\.sagemaker:"
                         r"path/endpoints/(?P<endpoint>[^/]+)/invocations$")


def self_signed_certificate(folder: Path, region: str) -> tuple[Path, Path]:
    """(certificate, key) PEM files for ``*.execute-api.<region>.amazonaws.com``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    host = f"*.execute-api.{region}.amazonaws.com"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "gateway.pem", folder / "gateway.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Bucket:
    rate: float
    burst: int
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def message(cls, status: int, text: str) -> Reply:
        return cls(status, json.dumps({"message": text}).encode())


class ConfigurationError(Exception):
    """API Gateway cannot run the integration (no such role, role not trusted): its 500."""


class Gateway:
    def __init__(self, region: str, recorded: Callable[[], list[dict[str, Any]]],
                 endpoints: dict[str, str]) -> None:
        self.region = region
        self.recorded = recorded  # moto's recorded requests, read when needed
        self.endpoints = endpoints  # endpoint name -> base URL of its container
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.binary: dict[str, set[str]] = {}  # API id -> its binary media types
        self.lock = threading.Lock()
        self.apigateway = boto3.client("apigateway", region_name=region)
        self.iam = boto3.client("iam", region_name=region)
        self.sagemaker = boto3.client("sagemaker", region_name=region)

    # API Gateway -------------------------------------------------------------------------
    def handle(self, method: str, host: str, path: str, headers: dict[str, str],
               body: bytes) -> Reply:
        """``headers`` with lower-case names."""
        suffix = f".execute-api.{self.region}.amazonaws.com"
        api_id = host.split(":")[0].removesuffix(suffix)
        stage, _, resource_path = path.lstrip("/").partition("/")
        target = self._method(api_id, stage, "/" + resource_path.split("?")[0], method)
        if target is None:
            return Reply.message(403, "Missing Authentication Token")
        if target["apiKeyRequired"]:
            plan = self._plan_for_key(api_id, stage, headers.get("x-api-key", ""))
            if plan is None:
                return Reply.message(403, "Forbidden")
            if not self._bucket(plan, headers["x-api-key"]).take():
                return Reply.message(429, "Too Many Requests")
        integration = target["methodIntegration"]
        # integration.request.header.X <- method.request.header.Y
        mapped = {target_name.rsplit(".", 1)[1]: headers.get(source.rsplit(".", 1)[1].lower(), "")
                  for target_name, source in integration.get("requestParameters", {}).items()}
        if mapped.get("Content-Type", "").split(";")[0] not in self._binary_types(api_id):
            body = body.decode("utf-8", errors="replace").encode()
        try:
            backend = self._integration(integration, mapped, body)
        except ConfigurationError:
            return Reply.message(500, "Internal server error")
        return self._method_response(integration, backend)

    def _method(self, api_id: str, stage: str, path: str, method: str) -> dict | None:
        try:
            self.apigateway.get_stage(restApiId=api_id, stageName=stage)
            resources = self.apigateway.get_resources(restApiId=api_id, embed=["methods"])
        except self.apigateway.exceptions.NotFoundException:
            return None
        for resource in resources["items"]:
            if resource["path"] == path:
                return resource.get("resourceMethods", {}).get(method)
        return None

    def _plan_for_key(self, api_id: str, stage: str, value: str) -> dict | None:
        keys = self.apigateway.get_api_keys(includeValues=True)["items"]
        key = next((k for k in keys if k.get("value") == value and k.get("enabled")), None)
        if key is None:
            return None
        for plan in self.apigateway.get_usage_plans(keyId=key["id"])["items"]:
            if {"apiId": api_id, "stage": stage} in [
                    {"apiId": s["apiId"], "stage": s["stage"]} for s in plan["apiStages"]]:
                return plan
        return None

    def _bucket(self, plan: dict, key: str) -> Bucket:
        with self.lock:
            throttle = plan.get("throttle", {})
            return self.buckets.setdefault((plan["id"], key), Bucket(
                throttle.get("rateLimit", 10000.0), throttle.get("burstLimit", 5000)))

    def _binary_types(self, api_id: str) -> set[str]:
        if api_id not in self.binary:
            self.binary[api_id] = self._recorded_binary_types(api_id)
        return self.binary[api_id]

    def _recorded_binary_types(self, api_id: str) -> set[str]:
        for entry in self.recorded():
            if entry["method"] == "POST" and entry["url"].endswith("/restapis"):
                sent = json.loads(entry["body"])
                created = [a["id"] for a in self.apigateway.get_rest_apis()["items"]
                           if a["name"] == sent["name"]]
                if api_id in created:
                    return set(sent.get("binaryMediaTypes", []))
        return set()

    def _method_response(self, integration: dict, backend: Reply) -> Reply:
        responses = integration.get("integrationResponses", {})
        chosen = next((r for r in responses.values() if r.get("selectionPattern") and
                       re.fullmatch(r["selectionPattern"], str(backend.status))), None)
        chosen = chosen or next(r for r in responses.values() if not r.get("selectionPattern"))
        parameters = chosen.get("responseParameters", {})
        content_type = ("application/json" if "method.response.header.Content-Type"
                        not in parameters else backend.content_type)
        return Reply(int(chosen["statusCode"]), backend.body, content_type)

    # IAM and SageMaker Runtime -----------------------------------------------------------
    def _integration(self, integration: dict, headers: dict[str, str], body: bytes) -> Reply:
        match = INTEGRATION.match(integration.get("uri", ""))
        if integration.get("type") != "AWS" or match is None:
            raise ConfigurationError(integration.get("uri"))
        endpoint = match["endpoint"]
        try:
            arn = self.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
        except self.sagemaker.exceptions.ClientError:
            return Reply(400, json.dumps({"message": f"Endpoint {endpoint} not found."}).encode())
        if not self._role_allows(integration.get("credentials", ""), arn):
            return Reply(403, json.dumps({"message": "AccessDeniedException: not authorized to "
                                                     "perform sagemaker:InvokeEndpoint"}).encode())
        return self._invoke(endpoint, headers, body)

    def _role_allows(self, role_arn: str, endpoint_arn: str) -> bool:
        """Whether the role's inline policies allow InvokeEndpoint on the endpoint; raises
        ConfigurationError when API Gateway could not assume the role at all."""
        name = role_arn.rsplit("/", 1)[-1]
        try:
            role = self.iam.get_role(RoleName=name)["Role"]
        except self.iam.exceptions.NoSuchEntityException:
            raise ConfigurationError(role_arn) from None
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        if not any(s.get("Principal", {}).get("Service") == "apigateway.amazonaws.com"
                   for s in trust["Statement"]):
            raise ConfigurationError(f"{role_arn} does not trust apigateway.amazonaws.com")
        for policy_name in self.iam.list_role_policies(RoleName=name)["PolicyNames"]:
            document = self.iam.get_role_policy(RoleName=name, PolicyName=policy_name)
            statements = document["PolicyDocument"]["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                actions = _as_list(statement.get("Action"))
                resources = _as_list(statement.get("Resource"))
                if statement.get("Effect") == "Allow" and any(
                        fnmatch.fnmatchcase("sagemaker:InvokeEndpoint", a) for a in actions
                ) and any(fnmatch.fnmatchcase(endpoint_arn, r) for r in resources):
                    return True
        return False

    def _invoke(self, endpoint: str, headers: dict[str, str], body: bytes) -> Reply:
        url = self.endpoints[endpoint].rstrip("/") + "/invocations"
        request = urllib.request.Request(url, data=body, method="POST", headers={
            k: v for k, v in headers.items() if v})
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return Reply(reply.status, reply.read(), reply.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as error:
            message = error.read().decode(errors="replace")
            return Reply(424, json.dumps({
                "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if error.code < 500
                else "SERVER_ERROR_FROM_MODEL", "OriginalStatusCode": error.code,
                "OriginalMessage": message,
                "Message": f"Received client error ({error.code}) from primary with message "
                           f"\"{message}\"."}).encode())


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value] if value else []


@contextmanager
def serve_gateway(gateway: Gateway, folder: Path) -> Iterator[tuple[int, Path]]:
    """Serve ``gateway`` over HTTPS on 127.0.0.1; yields (port, CA file for clients)."""
    cert, key = self_signed_certificate(folder, gateway.region)

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = gateway.handle(self.command, headers.get("host", ""), self.path, headers,
                                   body)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_POST = do_GET = do_PUT = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def curl(printed: str, port: int, ca: Path, *, data: Path, content_type: str,
         drop_key: bool = False) -> tuple[int, bytes]:
    """Run the curl command a launcher printed, unchanged but for the image it sends (and its
    Content-Type), reaching the stand-in through ``--connect-to`` and trusting its certificate.
    Returns (HTTP status, body)."""
    import shutil
    import subprocess
    from urllib.parse import urlsplit

    executable = shutil.which("curl")
    assert executable, "curl is not installed (apt-get install curl)"
    argv = shlex.split(printed)
    assert argv[0] == "curl", printed
    url = next(a for a in argv if a.startswith("https://"))
    host = urlsplit(url).hostname
    command: list[str] = [executable]
    args = iter(argv[1:])
    for arg in args:
        if arg == "-H":
            header = next(args)
            name = header.split(":", 1)[0].lower()
            if name == "content-type":
                header = f"Content-Type: {content_type}"
            if name == "x-api-key" and drop_key:
                continue
            command += ["-H", header]
        elif arg == "--data-binary":
            next(args)
            command += ["--data-binary", f"@{data}"]
        else:
            command.append(arg)
    command += ["--connect-to", f"{host}:443:127.0.0.1:{port}", "--cacert", str(ca),
                "--noproxy", "*", "--silent", "--show-error", "--max-time", "120",
                "--output", "-", "--write-out", "\n%{http_code}"]
    proc = subprocess.run(command, capture_output=True, timeout=150)
    assert proc.returncode == 0, proc.stderr.decode()
    body, _, status = proc.stdout.rpartition(b"\n")
    return int(status), body
