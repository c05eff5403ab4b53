"""A SageMaker Model for hosting: from a training job, or from an S3 ``model.tar.gz``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from launch.cli import key_value
from launch.session import resolve_role

if TYPE_CHECKING:
    import sagemaker
    from sagemaker.model import Model


def add_model_arguments(parser: argparse.ArgumentParser, *, existing: bool = False) -> None:
    group = parser.add_argument_group("model")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--training-job", help="host this training job's model.tar.gz")
    source.add_argument("--model-data", metavar="S3_URI", help="s3://.../model.tar.gz")
    if existing:
        source.add_argument("--model", help="an existing SageMaker model name")
    group.add_argument("--image-uri", help="serving image (default: the training job's image; "
                       "required with --model-data)")
    group.add_argument("--model-name", help="name of the model to create (default: generated)")
    group.add_argument("--env", action="append", type=key_value, default=[],
                       metavar="NAME=VALUE", help="environment of the serving container "
                       "(repeatable)")


def build_model(args: argparse.Namespace, session: sagemaker.Session,
                env: dict[str, str]) -> Model:
    from sagemaker.model import Model

    image, model_data = args.image_uri, args.model_data
    if args.training_job:
        job = session.describe_training_job(args.training_job)
        if job["TrainingJobStatus"] != "Completed":
            raise ValueError(f"training job {args.training_job} is "
                             f"{job['TrainingJobStatus']}, not Completed")
        model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
        image = image or job["AlgorithmSpecification"]["TrainingImage"]
    if not image:
        raise ValueError("--image-uri is required with --model-data")
    return Model(image_uri=image, model_data=model_data, role=resolve_role(args, session),
                 env={**env, **dict(args.env)} or None, name=args.model_name,
                 sagemaker_session=session)
