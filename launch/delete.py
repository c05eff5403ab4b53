"""``python -m launch.delete``: an endpoint, its endpoint configuration and its model(s).

What the notebook's ``predictor.delete_endpoint()`` and ``predictor.delete_model()`` remove,
found from the endpoint: DescribeEndpoint names the configuration, whose production variants
name the models. A model that another endpoint configuration still uses is kept.
"""

from __future__ import annotations

import argparse
import sys

from launch.cli import new_parser, run
from launch.session import add_session_arguments, aws_session

EXAMPLE = """
python -m launch.delete --endpoint-name digits
python -m launch.delete --endpoint-name digits --keep-model   # keep the model for batch transform
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "python -m launch.delete",
        "Delete a SageMaker endpoint, its endpoint configuration and its model(s).",
        EXAMPLE,
    )
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--keep-config", action="store_true",
                        help="keep the endpoint configuration (and so its models)")
    parser.add_argument("--keep-model", action="store_true", help="keep the model(s)")
    add_session_arguments(parser, role=False, bucket=False)
    return parser


def models_in_use(client, config_names: set[str]) -> set[str]:
    """Models that the given endpoint configurations serve."""
    used: set[str] = set()
    for name in config_names:
        variants = client.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
        used.update(v["ModelName"] for v in variants if v.get("ModelName"))
    return used


def other_configs(client, keep: str) -> set[str]:
    names: set[str] = set()
    for page in client.get_paginator("list_endpoint_configs").paginate():
        names.update(c["EndpointConfigName"] for c in page["EndpointConfigs"])
    return names - {keep}


def launch(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    client = aws_session(args).client("sagemaker")
    try:
        endpoint = client.describe_endpoint(EndpointName=args.endpoint_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationException":
            raise ValueError(f"no endpoint {args.endpoint_name!r} in "
                             f"{client.meta.region_name}; `aws sagemaker list-endpoints` lists "
                             "them") from exc
        raise
    config = endpoint["EndpointConfigName"]
    models = sorted(models_in_use(client, {config}))
    client.delete_endpoint(EndpointName=args.endpoint_name)
    print(f"deleted endpoint {args.endpoint_name}")
    if args.keep_config:
        return 0
    client.delete_endpoint_config(EndpointConfigName=config)
    print(f"deleted endpoint configuration {config}")
    if args.keep_model:
        return 0
    still_used = models_in_use(client, other_configs(client, config))
    for model in models:
        if model in still_used:
            print(f"kept model {model}: another endpoint configuration uses it")
            continue
        client.delete_model(ModelName=model)
        print(f"deleted model {model}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(launch, get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
