"""``python -m launch.deploy``: a real-time endpoint serving a trained model."""

from __future__ import annotations

import argparse
import sys

from launch.cli import new_parser, run
from launch.models import add_model_arguments, build_model
from launch.session import add_session_arguments, make_session

EXAMPLE = """
python -m launch.deploy --training-job sm-vision-2025-01-31-12-00-00-000 \\
    --role arn:aws:iam::123456789012:role/SageMakerRole \\
    --instance-type ml.g5.xlarge --endpoint-name digits \\
    --workers 2 --timeout 60 --max-payload-mb 6
python -m launch.invoke --endpoint-name digits 7.png --top-k 3
"""

# Serving settings, as the serve command reads them (README "Environment variables").
SERVER_ENV = {
    "workers": "SAGEMAKER_MODEL_SERVER_WORKERS",
    "timeout": "SAGEMAKER_MODEL_SERVER_TIMEOUT",
    "max_payload_mb": "SAGEMAKER_MAX_PAYLOAD_IN_MB",
}


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "python -m launch.deploy",
        "Create a model and a real-time endpoint for it on the sm-vision serving image.",
        EXAMPLE,
    )
    add_model_arguments(parser)
    endpoint = parser.add_argument_group("endpoint")
    endpoint.add_argument("--endpoint-name", help="default: generated from the model")
    endpoint.add_argument("--instance-type", default="ml.g5.xlarge")
    endpoint.add_argument("--instance-count", type=int, default=1)
    endpoint.add_argument("--workers", type=int,
                          help="SAGEMAKER_MODEL_SERVER_WORKERS (default: one per GPU)")
    endpoint.add_argument("--timeout", type=int, help="SAGEMAKER_MODEL_SERVER_TIMEOUT seconds")
    endpoint.add_argument("--max-payload-mb", type=int, help="SAGEMAKER_MAX_PAYLOAD_IN_MB")
    endpoint.add_argument("--no-wait", dest="wait", action="store_false",
                          help="return once the endpoint is being created")
    add_session_arguments(parser)
    return parser


def server_env(args: argparse.Namespace) -> dict[str, str]:
    return {name: str(getattr(args, flag)) for flag, name in SERVER_ENV.items()
            if getattr(args, flag) is not None}


def launch(args: argparse.Namespace) -> int:
    session = make_session(args)
    model = build_model(args, session, server_env(args))
    model.deploy(initial_instance_count=args.instance_count, instance_type=args.instance_type,
                 endpoint_name=args.endpoint_name, wait=args.wait)
    print(f"model: {model.name}")
    print(f"endpoint: {model.endpoint_name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(launch, get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
