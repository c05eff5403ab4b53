"""``python -m launch.api``: a public HTTPS API with an API key in front of an endpoint.

Seed Lab 3's last step, without the console and without a Lambda: API Gateway calls SageMaker
Runtime itself (see ``launch.api_gateway``). Prints the invoke URL, the API key and a ``curl``
command; ``--delete`` removes the API, its usage plan and key, and the IAM role.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from launch import api_gateway
from launch.cli import new_parser, run
from launch.session import add_session_arguments, aws_session

QUOTA_PERIODS = ("DAY", "WEEK", "MONTH")

EXAMPLE = """
python -m launch.api --endpoint-name digits --rate-limit 10 --burst-limit 20
curl -X POST "https://<api id>.execute-api.us-east-1.amazonaws.com/prod/predict" \\
    -H "x-api-key: <key>" -H "Content-Type: image/png" --data-binary @7.png
python -m launch.api --endpoint-name digits --delete
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "python -m launch.api",
        "Put an API Gateway REST API (POST /predict, API key, throttling) in front of a "
        "SageMaker endpoint, integrated directly with InvokeEndpoint; or --delete it.",
        EXAMPLE,
    )
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--api-name", help="default: <endpoint name>-api")
    parser.add_argument("--stage", default="prod", help="stage name in the URL (default prod)")
    parser.add_argument("--rate-limit", type=float, default=10,
                        help="steady requests per second per key (default 10)")
    parser.add_argument("--burst-limit", type=int, default=20,
                        help="requests at once per key (default 20)")
    parser.add_argument("--quota", type=int, help="requests per --quota-period (default: none)")
    parser.add_argument("--quota-period", choices=QUOTA_PERIODS, default="MONTH")
    parser.add_argument("--binary-media-type", action="append", metavar="TYPE",
                        help="a type passed as bytes (repeatable; default: "
                        f"{', '.join(api_gateway.BINARY_MEDIA_TYPES)})")
    parser.add_argument("--delete", action="store_true",
                        help="remove the API, its usage plan and key, and its IAM role")
    add_session_arguments(parser, role=False, bucket=False)
    return parser


def curl_example(url: str, key: str) -> str:
    return shlex.join(["curl", "-X", "POST", url, "-H", f"x-api-key: {key}",
                       "-H", "Content-Type: image/jpeg", "-H", "Accept: application/json",
                       "--data-binary", "@image.jpg"])


def launch(args: argparse.Namespace) -> int:
    names = api_gateway.Names(args.api_name or f"{args.endpoint_name}-api")
    if args.rate_limit <= 0 or args.burst_limit < 1:
        raise ValueError("--rate-limit must be above 0 and --burst-limit at least 1")
    session = aws_session(args)
    clients = {name: session.client(name) for name in ("apigateway", "iam", "sagemaker")}
    if args.delete:
        removed = api_gateway.delete(clients, names)
        if not removed:
            raise ValueError(f"nothing named {names.api!r} to delete in {session.region_name}")
        for item in removed:
            print(f"deleted {item}")
        return 0
    throttle = api_gateway.Throttle(args.rate_limit, args.burst_limit, args.quota,
                                    args.quota_period)
    created = api_gateway.create(clients, names, args.endpoint_name, session.region_name,
                                 args.stage, throttle,
                                 args.binary_media_type or list(api_gateway.BINARY_MEDIA_TYPES))
    print(f"API: {names.api} ({created.api_id}), role {created.role_arn}")
    print(f"usage plan: {created.plan_id} ({args.rate_limit:g} requests/s, burst "
          f"{args.burst_limit}{f', {args.quota}/{args.quota_period}' if args.quota else ''})")
    print(f"invoke URL: {created.url}")
    print(f"API key: {created.key_value}")
    print(f"API key id: {created.key_id} (aws apigateway get-api-key --api-key "
          f"{created.key_id} --include-value shows the key again)")
    print(f"try it: {curl_example(created.url, created.key_value)}")
    print("(a new role can take a few seconds before API Gateway may use it)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(launch, get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
