"""What every cloud launcher needs: region/profile/bucket flags, AWS sessions, a role.

The SDK and boto3 read the usual environment (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``, credentials); the flags only override it. A missing region or missing
credentials are found here, before any request, and reported as one line naming the fix.
SDK telemetry is opted out unless the SDK's own defaults config sets ``TelemetryOptOut``
(``~/.config/sagemaker/config.yaml`` or the file named by ``SAGEMAKER_USER_CONFIG_OVERRIDE``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3
    import sagemaker

NO_REGION = ("no AWS region: pass --region REGION, or set AWS_REGION (or AWS_DEFAULT_REGION), "
             "or run `aws configure set region REGION`")
NO_CREDENTIALS = ("no AWS credentials found: run `aws configure` (or `aws sso login --profile "
                  "NAME` and pass --profile NAME), or set AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY")


class SetupError(ValueError):
    """The local AWS setup is incomplete; the message says how to complete it."""


def add_session_arguments(parser: argparse.ArgumentParser, *, role: bool = True,
                          bucket: bool = True) -> None:
    group = parser.add_argument_group("AWS session")
    group.add_argument("--region", help="AWS region (default: the AWS config/environment)")
    group.add_argument("--profile", help="AWS profile name (default: the AWS config/environment)")
    if bucket:
        group.add_argument("--bucket", help="SageMaker default bucket for uploads and outputs "
                           "(default: sagemaker-<region>-<account>, created if missing)")
    if role:
        group.add_argument("--role", help="IAM role ARN SageMaker assumes (default: the "
                           "notebook's execution role, when run in SageMaker)")


def aws_session(args: argparse.Namespace) -> boto3.Session:
    """A boto3 session with a region and credentials, or a SetupError naming the fix."""
    import boto3

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    if not session.region_name:
        raise SetupError(NO_REGION)
    if session.get_credentials() is None:
        raise SetupError(NO_CREDENTIALS)
    return session


def sdk_config() -> dict[str, Any]:
    """The SDK's defaults config as it would load it, telemetry opted out unless it says."""
    from sagemaker.config import load_sagemaker_config

    config = load_sagemaker_config() or {}
    config.setdefault("SchemaVersion", "1.0")
    modules = (config.setdefault("SageMaker", {}).setdefault("PythonSDK", {})
               .setdefault("Modules", {}))
    modules.setdefault("TelemetryOptOut", True)
    return config


def make_session(args: argparse.Namespace) -> sagemaker.Session:
    import sagemaker

    return sagemaker.Session(boto_session=aws_session(args),
                             default_bucket=getattr(args, "bucket", None),
                             sagemaker_config=sdk_config())


def resolve_role(args: argparse.Namespace, session: sagemaker.Session) -> str:
    if args.role:
        return args.role
    from sagemaker import get_execution_role

    try:
        return get_execution_role(session)
    except ValueError as exc:
        raise ValueError("no --role given and no SageMaker execution role found here; pass "
                         "--role arn:aws:iam::<account>:role/<name>") from exc
