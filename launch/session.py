"""What every cloud launcher needs: region/profile/bucket flags, a SageMaker session, a role.

The SDK and boto3 read the usual environment (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``, credentials); the flags only override it. SDK telemetry follows the
SDK's own defaults config (``TelemetryOptOut`` in ``~/.config/sagemaker/config.yaml`` or the
file named by ``SAGEMAKER_USER_CONFIG_OVERRIDE``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sagemaker


def add_session_arguments(parser: argparse.ArgumentParser, *, role: bool = True) -> None:
    group = parser.add_argument_group("AWS session")
    group.add_argument("--region", help="AWS region (default: the AWS config/environment)")
    group.add_argument("--profile", help="AWS profile name (default: the AWS config/environment)")
    group.add_argument("--bucket", help="SageMaker default bucket for uploads and outputs "
                       "(default: sagemaker-<region>-<account>, created if missing)")
    if role:
        group.add_argument("--role", help="IAM role ARN SageMaker assumes (default: the "
                           "notebook's execution role, when run in SageMaker)")


def make_session(args: argparse.Namespace) -> sagemaker.Session:
    import boto3
    import sagemaker

    boto_session = boto3.Session(profile_name=args.profile, region_name=args.region)
    return sagemaker.Session(boto_session=boto_session, default_bucket=args.bucket)


def resolve_role(args: argparse.Namespace, session: sagemaker.Session) -> str:
    if args.role:
        return args.role
    from sagemaker import get_execution_role

    try:
        return get_execution_role(session)
    except ValueError as exc:
        raise ValueError("no --role given and no SageMaker execution role found here; pass "
                         "--role arn:aws:iam::<account>:role/<name>") from exc
