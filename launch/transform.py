"""``python -m launch.transform``: a batch transform job over an S3 prefix, JSON Lines out.

Two input formats (README "Batch transform"): ``images`` sends each S3 object as one image
(``application/x-image``, no splitting, SingleRecord); ``jsonlines`` sends ``.jsonl`` files
of base64 images, many per request (``application/jsonlines``, split by line, MultiRecord).
Either way the output is ``application/jsonlines``, one ``{"prediction": [...]}`` per image.
"""

from __future__ import annotations

import argparse
import sys

from launch.cli import new_parser, run
from launch.models import add_model_arguments, build_model
from launch.session import add_session_arguments, make_session

INPUT_FORMATS = {
    "images": {"content_type": "application/x-image", "split_type": "None",
               "strategy": "SingleRecord"},
    "jsonlines": {"content_type": "application/jsonlines", "split_type": "Line",
                  "strategy": "MultiRecord"},
}
ACCEPT = "application/jsonlines"

EXAMPLE = """
python -m launch.transform --training-job sm-vision-2025-01-31-12-00-00-000 \\
    --role arn:aws:iam::123456789012:role/SageMakerRole \\
    --input s3://my-bucket/batch/jsonl/ --input-format jsonlines \\
    --output s3://my-bucket/batch/out/ --instance-type ml.g5.xlarge \\
    --max-payload 6 --max-concurrent-transforms 4 --verbose --wait
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "python -m launch.transform",
        "Run a batch transform job over an S3 prefix on the sm-vision serving image.",
        EXAMPLE,
    )
    add_model_arguments(parser, existing=True)
    job = parser.add_argument_group("transform job")
    job.add_argument("--input", required=True, metavar="S3_PREFIX")
    job.add_argument("--output", metavar="S3_PREFIX",
                     help="default: s3://<bucket>/<job name>/")
    job.add_argument("--input-format", choices=sorted(INPUT_FORMATS), default="images",
                     help="images: one image per object; jsonlines: base64 images, one per "
                     "line (default images)")
    job.add_argument("--content-type", help="override the input format's content type")
    job.add_argument("--split-type", choices=("None", "Line", "RecordIO"))
    job.add_argument("--strategy", choices=("SingleRecord", "MultiRecord"))
    job.add_argument("--accept", default=ACCEPT, help=f"output type (default {ACCEPT})")
    job.add_argument("--verbose", action="store_true",
                     help="class names in the output (adds '; verbose=true' to --accept)")
    job.add_argument("--max-payload", type=int, default=6,
                     help="MB per request; keep <= the server's SAGEMAKER_MAX_PAYLOAD_IN_MB "
                     "(default 6)")
    job.add_argument("--max-concurrent-transforms", type=int,
                     help="requests at once per instance (default: the server's answer to "
                     "/execution-parameters)")
    job.add_argument("--instance-type", default="ml.g5.xlarge")
    job.add_argument("--instance-count", type=int, default=1)
    job.add_argument("--job-name")
    job.add_argument("--wait", action="store_true", help="wait and stream the logs")
    add_session_arguments(parser)
    return parser


def launch(args: argparse.Namespace) -> int:
    from sagemaker.transformer import Transformer

    session = make_session(args)
    if args.model:
        model_name = args.model
    else:
        model = build_model(args, session, {})
        model.create(instance_type=args.instance_type)
        model_name = model.name
    preset = INPUT_FORMATS[args.input_format]
    accept = f"{args.accept}; verbose=true" if args.verbose else args.accept
    split_type = args.split_type or preset["split_type"]
    transformer = Transformer(
        model_name=model_name,
        instance_count=args.instance_count,
        instance_type=args.instance_type,
        strategy=args.strategy or preset["strategy"],
        assemble_with="Line",
        output_path=args.output,
        accept=accept,
        max_concurrent_transforms=args.max_concurrent_transforms,
        max_payload=args.max_payload,
        sagemaker_session=session,
    )
    transformer.transform(
        args.input,
        data_type="S3Prefix",
        content_type=args.content_type or preset["content_type"],
        split_type=None if split_type == "None" else split_type,
        job_name=args.job_name,
        wait=args.wait,
        logs=args.wait,
    )
    print(f"model: {model_name}")
    print(f"transform job: {transformer.latest_transform_job.name}")
    print(f"output: {transformer.output_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(launch, get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
