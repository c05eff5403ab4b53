"""The training-job settings shared by ``train``, ``tune`` and ``label_workflow``: an Estimator."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from launch import debugger, metric_definitions
from launch.cli import key_value
from launch.hyperparameters import (
    add_hyperparameter_arguments,
    hyperparameters_from_args,
    is_true,
)
from launch.session import add_session_arguments, resolve_role

if TYPE_CHECKING:
    import sagemaker
    from sagemaker.estimator import Estimator

DEFAULT_BASE_JOB_NAME = "sm-vision"


def add_estimator_arguments(parser: argparse.ArgumentParser, *, image_required: bool = True
                            ) -> None:
    job = parser.add_argument_group("training job")
    job.add_argument("--image-uri", required=image_required,
                     help="training image, e.g. <account>.dkr.ecr.<region>.amazonaws.com/"
                     "sm-vision-train:latest")
    job.add_argument("--instance-type", default="ml.g5.xlarge")
    job.add_argument("--instance-count", type=int, default=1)
    job.add_argument("--volume-size", type=int, default=30, help="EBS volume in GB (default 30)")
    job.add_argument("--max-run", type=int, default=24 * 3600,
                     help="seconds before SageMaker stops the job (default 86400)")
    job.add_argument("--output-path", help="S3 prefix for model.tar.gz (default: "
                     "s3://<bucket>/)")
    job.add_argument("--base-job-name", default=DEFAULT_BASE_JOB_NAME)
    job.add_argument("--env", action="append", type=key_value, default=[], metavar="NAME=VALUE",
                     help="environment variable for the training container (repeatable)")
    spot = parser.add_argument_group("spot training")
    spot.add_argument("--spot", action="store_true", help="use managed spot instances")
    spot.add_argument("--max-wait", type=int,
                      help="seconds to wait for spot capacity plus run time (default --max-run)")
    spot.add_argument("--checkpoint-s3-uri", help="where /opt/ml/checkpoints is synced "
                      "(default with --spot: s3://<bucket>/<job name>/checkpoints)")
    metrics = parser.add_argument_group("metrics")
    metrics.add_argument("--task", choices=metric_definitions.TASKS, default="classification",
                         help="which metric definitions to send (default classification)")
    metrics.add_argument("--metric", action="append", type=key_value, default=[],
                         metavar="NAME=REGEX", help="a metric definition (repeatable); one named "
                         "like a default replaces it")
    metrics.add_argument("--no-metric-definitions", action="store_true",
                         help="send none of the task's definitions (SageMaker's built-in "
                         "algorithm images define their own); --metric still adds")
    add_hyperparameter_arguments(parser)
    debugger.add_debugger_arguments(parser)
    add_session_arguments(parser)


def check_job_arguments(args: argparse.Namespace) -> None:
    """Mistakes SageMaker would reject (or silently drop), found before any request."""
    if args.max_wait is not None and not args.spot:
        raise ValueError(f"--max-wait {args.max_wait} applies to spot training only; add --spot "
                         "or drop --max-wait")
    if args.spot and args.max_wait is not None and args.max_wait < args.max_run:
        raise ValueError(f"--max-wait {args.max_wait} is below --max-run {args.max_run}: "
                         "SageMaker requires max_wait >= max_run (it counts the wait for spot "
                         f"capacity plus the run); give --max-wait {args.max_run} or more")
    if args.instance_count < 1:
        raise ValueError(f"--instance-count {args.instance_count} must be at least 1")


def metric_definitions_from_args(args: argparse.Namespace, hyperparameters: dict[str, str]
                                 ) -> list[dict[str, str]]:
    defaults = [] if args.no_metric_definitions else metric_definitions.for_task(
        args.task, multi_label=is_true(hyperparameters.get("multi_label")))
    return metric_definitions.merge(defaults, args.metric)


def job_name(args: argparse.Namespace) -> str:
    """A unique name chosen here, so the default checkpoint URI can contain it."""
    from sagemaker.utils import name_from_base

    return name_from_base(args.base_job_name)


def default_checkpoint_uri(session: sagemaker.Session, name: str) -> str:
    # The trailing slash keeps S3's prefix match from taking in "<name>/checkpoints-old".
    return f"s3://{session.default_bucket()}/{name}/checkpoints/"


def build_estimator(args: argparse.Namespace, session: sagemaker.Session, *, input_mode: str,
                    name: str | None = None, defaults: dict[str, str] | None = None
                    ) -> Estimator:
    """The job's Estimator; ``name`` (the training or tuning job's, if known) places the
    default spot checkpoint URI, and ``defaults`` are hyperparameters the flags and file may
    override."""
    from sagemaker.estimator import Estimator

    hyperparameters = {**(defaults or {}), **hyperparameters_from_args(args)}
    checkpoint_uri = args.checkpoint_s3_uri
    if args.spot and checkpoint_uri is None and name is not None:
        checkpoint_uri = default_checkpoint_uri(session, name)
    return Estimator(
        image_uri=args.image_uri,
        role=resolve_role(args, session),
        instance_count=args.instance_count,
        instance_type=args.instance_type,
        volume_size=args.volume_size,
        max_run=args.max_run,
        input_mode=input_mode,
        use_spot_instances=args.spot,
        max_wait=(args.max_wait or args.max_run) if args.spot else None,
        checkpoint_s3_uri=checkpoint_uri,
        output_path=args.output_path,
        base_job_name=args.base_job_name,
        hyperparameters=hyperparameters,
        metric_definitions=metric_definitions_from_args(args, hyperparameters) or None,
        environment=dict(args.env) or None,
        sagemaker_session=session,
        **debugger.estimator_kwargs(args),
    )
