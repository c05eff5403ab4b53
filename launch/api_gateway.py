"""An API Gateway REST API in front of a SageMaker endpoint, with no Lambda in between.

``POST /<stage>/predict`` is an AWS service integration with SageMaker Runtime's
``InvokeEndpoint`` (``arn:aws:apigateway:<region>:runtime.sagemaker:path/endpoints/<name>/
invocations``); API Gateway signs the call with an IAM role that may invoke that endpoint
only. Image types are binary media types, so bodies pass through as bytes; ``Content-Type``
and ``Accept`` are passed on, and the model's ``Content-Type`` comes back. A usage plan with
throttling (and an optional quota) holds the one API key the method requires.

Every resource is named after the API (``<api>-invoke`` role, ``<api>-plan``, ``<api>-key``),
so ``delete`` finds them again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

RESOURCE = "predict"
# Request and answer types sent as raw bytes (images in, masks and records out).
BINARY_MEDIA_TYPES = ("image/jpeg", "image/png", "application/x-image", "application/x-npy",
                      "application/x-protobuf", "application/x-recordio-protobuf")
ROLE_POLICY_NAME = "invoke-endpoint"
# API Gateway's own ceiling for an integration (29 s).
INTEGRATION_TIMEOUT_MS = 29000
# Method status -> the SageMaker Runtime status codes it stands for (AWS integrations select
# an integration response by matching the backend's status code).
STATUS_PATTERNS = {"200": None, "400": r"4\d{2}", "500": r"5\d{2}"}
CONTENT_TYPE = "method.response.header.Content-Type"


@dataclass(frozen=True)
class Names:
    api: str

    @property
    def role(self) -> str:
        return f"{self.api}-invoke"[:64]

    @property
    def plan(self) -> str:
        return f"{self.api}-plan"

    @property
    def key(self) -> str:
        return f"{self.api}-key"


@dataclass(frozen=True)
class Throttle:
    rate: float  # requests per second, steady
    burst: int
    quota: int | None = None
    quota_period: str = "MONTH"


@dataclass(frozen=True)
class CreatedApi:
    api_id: str
    url: str
    key_id: str
    key_value: str
    role_arn: str
    plan_id: str


def integration_uri(region: str, endpoint: str) -> str:
    return f"arn:aws:apigateway:{region}:runtime.sagemaker:path/endpoints/{endpoint}/invocations"


def invoke_url(api_id: str, region: str, stage: str) -> str:
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/{RESOURCE}"


def trust_policy() -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}


def invoke_policy(endpoint_arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": endpoint_arn}]}


def find_api(apigateway: Any, name: str) -> dict[str, Any] | None:
    for page in apigateway.get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            if api["name"] == name:
                return api
    return None


def create(clients: dict[str, Any], names: Names, endpoint: str, region: str, stage: str,
           throttle: Throttle, binary_types: list[str]) -> CreatedApi:
    apigateway, iam, sagemaker = clients["apigateway"], clients["iam"], clients["sagemaker"]
    endpoint_arn = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
    if find_api(apigateway, names.api):
        raise ValueError(f"an API named {names.api!r} exists already: remove it with --delete, "
                         "or choose another --api-name")
    role_arn = iam.create_role(
        RoleName=names.role, AssumeRolePolicyDocument=json.dumps(trust_policy()),
        Description=f"API Gateway {names.api} invokes SageMaker endpoint {endpoint}",
    )["Role"]["Arn"]
    iam.put_role_policy(RoleName=names.role, PolicyName=ROLE_POLICY_NAME,
                        PolicyDocument=json.dumps(invoke_policy(endpoint_arn)))
    tags = {"sm-vision:endpoint": endpoint}
    api_id = apigateway.create_rest_api(
        name=names.api, description=f"POST /{RESOURCE} -> SageMaker endpoint {endpoint}",
        binaryMediaTypes=binary_types, apiKeySource="HEADER",
        endpointConfiguration={"types": ["REGIONAL"]}, tags=tags,
    )["id"]
    root = next(r["id"] for r in apigateway.get_resources(restApiId=api_id)["items"]
                if r["path"] == "/")
    resource = apigateway.create_resource(restApiId=api_id, parentId=root,
                                          pathPart=RESOURCE)["id"]
    method = {"restApiId": api_id, "resourceId": resource, "httpMethod": "POST"}
    apigateway.put_method(**method, authorizationType="NONE", apiKeyRequired=True,
                          requestParameters={"method.request.header.Content-Type": False,
                                             "method.request.header.Accept": False})
    apigateway.put_integration(
        **method, type="AWS", integrationHttpMethod="POST",
        uri=integration_uri(region, endpoint), credentials=role_arn,
        requestParameters={
            "integration.request.header.Content-Type": "method.request.header.Content-Type",
            "integration.request.header.Accept": "method.request.header.Accept"},
        passthroughBehavior="WHEN_NO_MATCH", timeoutInMillis=INTEGRATION_TIMEOUT_MS)
    for status, pattern in STATUS_PATTERNS.items():
        apigateway.put_method_response(**method, statusCode=status,
                                       responseParameters={CONTENT_TYPE: False})
        selection = {} if pattern is None else {"selectionPattern": pattern}
        apigateway.put_integration_response(
            **method, statusCode=status, **selection,
            responseParameters={CONTENT_TYPE: "integration.response.header.Content-Type"})
    apigateway.create_deployment(restApiId=api_id, stageName=stage,
                                 description=f"{names.api} on {endpoint}")
    plan: dict[str, Any] = {
        "name": names.plan, "description": f"API key, throttling for {names.api}",
        "apiStages": [{"apiId": api_id, "stage": stage}],
        "throttle": {"rateLimit": throttle.rate, "burstLimit": throttle.burst}, "tags": tags}
    if throttle.quota is not None:
        plan["quota"] = {"limit": throttle.quota, "period": throttle.quota_period}
    plan_id = apigateway.create_usage_plan(**plan)["id"]
    key = apigateway.create_api_key(name=names.key, enabled=True, tags=tags)
    apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
    return CreatedApi(api_id, invoke_url(api_id, region, stage), key["id"], key["value"],
                      role_arn, plan_id)


def delete(clients: dict[str, Any], names: Names) -> list[str]:
    """Remove the API, its usage plan and key, and the role; returns what was removed."""
    from botocore.exceptions import ClientError

    apigateway, iam = clients["apigateway"], clients["iam"]
    removed: list[str] = []
    api = find_api(apigateway, names.api)
    for plan in _plans(apigateway, names.plan):
        for key in apigateway.get_usage_plan_keys(usagePlanId=plan["id"]).get("items", []):
            apigateway.delete_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"])
            if key["name"] == names.key:
                apigateway.delete_api_key(apiKey=key["id"])
                removed.append(f"API key {key['id']}")
        # A plan still bound to a stage cannot be deleted.
        stages = [{"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
                  for s in plan.get("apiStages", [])]
        if stages:
            apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=stages)
        apigateway.delete_usage_plan(usagePlanId=plan["id"])
        removed.append(f"usage plan {plan['id']}")
    if api is not None:
        apigateway.delete_rest_api(restApiId=api["id"])
        removed.append(f"REST API {api['id']} ({names.api})")
    try:
        iam.delete_role_policy(RoleName=names.role, PolicyName=ROLE_POLICY_NAME)
        iam.delete_role(RoleName=names.role)
        removed.append(f"IAM role {names.role}")
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchEntity":
            raise
    return removed


def _plans(apigateway: Any, name: str) -> list[dict[str, Any]]:
    return [plan for page in apigateway.get_paginator("get_usage_plans").paginate()
            for plan in page.get("items", []) if plan["name"] == name]
