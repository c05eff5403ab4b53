"""``python -m launch.train``: start a training job on the sm-vision training image."""

from __future__ import annotations

import argparse
import sys

from launch.channels import add_channel_arguments, channels_from_args, default_input_mode
from launch.cli import new_parser, run
from launch.estimator import (
    add_estimator_arguments,
    build_estimator,
    check_job_arguments,
    job_name,
)
from launch.session import make_session

EXAMPLE = """
python -m launch.train \\
    --image-uri 123456789012.dkr.ecr.us-east-1.amazonaws.com/sm-vision-train:latest \\
    --role arn:aws:iam::123456789012:role/SageMakerRole \\
    --instance-type ml.g5.xlarge --spot --max-run 7200 --max-wait 14400 \\
    --channel train=s3://my-bucket/dogImages/train/ \\
    --channel validation=s3://my-bucket/dogImages/valid/ \\
    --channel test=s3://my-bucket/dogImages/test/ \\
    --data-format folder --instance-count 2 --distribution ShardedByS3Key \\
    --hp architecture=vgg16 --hp use_pretrained_model=1 --hp download_pretrained=1 \\
    --hp num_classes=133 --hp epochs=10 --hp lr=0.001 --hp batch-size=64 \\
    --debugger --profiler --wait
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "python -m launch.train",
        "Start a SageMaker training job on the sm-vision image: channels with their content "
        "types, hyperparameters, metric definitions, spot and checkpoints, Debugger/Profiler.",
        EXAMPLE,
    )
    add_channel_arguments(parser)
    add_estimator_arguments(parser)
    parser.add_argument("--job-name", help="exact job name (default: <base-job-name>-<time>)")
    parser.add_argument("--wait", action="store_true",
                        help="wait for the job and stream its logs")
    return parser


def launch(args: argparse.Namespace) -> int:
    check_job_arguments(args)
    channels = channels_from_args(args)
    session = make_session(args)
    name = args.job_name or job_name(args)
    estimator = build_estimator(args, session, input_mode=default_input_mode(args), name=name)
    inputs = {c.name: c.to_training_input() for c in channels}
    estimator.fit(inputs, wait=args.wait, logs="All" if args.wait else "None", job_name=name)
    job = estimator.latest_training_job
    print(f"training job: {job.name}")
    print(f"model artifact: {estimator.output_path.rstrip('/')}/{job.name}/output/model.tar.gz")
    if args.wait:
        print(f"status: {job.describe()['TrainingJobStatus']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(launch, get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
