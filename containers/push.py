#!/usr/bin/env python3
"""Push the built images to Amazon ECR (or any registry): what `make push` runs.

ECR: the account comes from STS and the region from --region, AWS_REGION,
AWS_DEFAULT_REGION or the AWS config; each repository is created if missing (scan on push),
and `docker login` gets a password from ecr:GetAuthorizationToken. With --registry HOST[:PORT]
the images go to that registry instead and no AWS call is made.

    python containers/push.py --images sm-vision-train sm-vision-serve --tags 1a2b3c4 latest
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass


class PushError(Exception):
    """Something the user must fix (no Docker, no credentials, no region, no image)."""


@dataclass(frozen=True)
class EcrLogin:
    registry: str  # host name, no scheme
    username: str
    password: str


def ecr_client(region: str | None) -> tuple:  # (boto3 session, ECR client)
    try:
        import boto3
        from botocore.exceptions import NoRegionError
    except ImportError as exc:
        raise PushError("boto3 is not installed: run `make setup` (or pip install boto3)") from exc
    session = boto3.session.Session(region_name=region)
    if not session.region_name:
        raise PushError("no AWS region: pass REGION=..., or set AWS_REGION / AWS_DEFAULT_REGION")
    try:
        return session, session.client("ecr")
    except NoRegionError as exc:
        raise PushError(str(exc)) from exc


def account_id(session) -> str:  # session: boto3.session.Session
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return session.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise PushError(
            f"cannot read the AWS account ({exc}); configure credentials (aws configure, "
            "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        ) from exc


def ensure_repository(ecr, name: str) -> str:  # ecr: a botocore ECR client
    """Return the repository URI, creating the repository (scan on push) if it is missing."""
    try:
        repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    except ecr.exceptions.RepositoryNotFoundException:
        repo = ecr.create_repository(
            repositoryName=name, imageScanningConfiguration={"scanOnPush": True}
        )["repository"]
        print(f"created ECR repository {repo['repositoryUri']} (scan on push)")
    return repo["repositoryUri"]


def ecr_login(ecr) -> EcrLogin:  # ecr: a botocore ECR client
    data = ecr.get_authorization_token()["authorizationData"][0]
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    registry = re.sub(r"^https?://", "", data["proxyEndpoint"]).rstrip("/")
    return EcrLogin(registry, username, password)


def docker(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise PushError(f"docker {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


def docker_login(login: EcrLogin) -> None:
    docker("login", "--username", login.username, "--password-stdin", login.registry,
           stdin=login.password)
    print(f"logged in to {login.registry}")


def push(images: list[str], tags: list[str], registry: str) -> dict[str, str]:
    """Tag and push every image:tag; returns {remote reference: digest}."""
    pushed = {}
    for image in images:
        for tag in tags:
            remote = f"{registry}/{image}:{tag}"
            docker("tag", f"{image}:{tag}", remote)
            output = docker("push", remote)
            match = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
            pushed[remote] = match.group(1) if match else ""
            print(f"pushed {remote} {pushed[remote]}")
    return pushed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", nargs="+", required=True, help="local image names")
    parser.add_argument("--tags", nargs="+", required=True, help="tags to push")
    parser.add_argument("--registry", default=os.environ.get("REGISTRY") or None,
                        help="push here instead of ECR (HOST[:PORT])")
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    try:
        if shutil.which("docker") is None:
            raise PushError("docker is not installed or not on PATH")
        for image in args.images:
            for tag in args.tags:
                if subprocess.run(["docker", "image", "inspect", f"{image}:{tag}"],
                                  capture_output=True).returncode != 0:
                    raise PushError(f"no local image {image}:{tag}; run `make build` first "
                                    "(or check that the Docker engine is reachable)")
        registry = args.registry
        if registry is None:
            session, ecr = ecr_client(args.region)
            account = account_id(session)
            for image in args.images:
                ensure_repository(ecr, image)
            login = ecr_login(ecr)
            docker_login(login)
            registry = login.registry
            print(f"account {account}, region {session.region_name}")
        push(args.images, args.tags, registry)
    except PushError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
