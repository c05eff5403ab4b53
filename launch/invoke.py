"""``python -m launch.invoke``: send local images to an endpoint and print what it answers.

Classification: the verbose answer (``Accept: application/json; verbose=true`` and
``CustomAttributes: top_k=N``) printed as the top-k labels per image; a plain list of
probabilities (the built-in algorithm's answer, ``--accept application/json``) is ranked here.
Binary answers (``image/png`` masks, ``application/x-protobuf`` records, ``application/x-npy``
arrays) are saved as ``<out-dir>/<image name>.<ext>`` and summarised.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from launch.answers import BINARY_SUFFIXES, media_type, summarise_binary, top_k_line
from launch.cli import new_parser, run
from launch.session import add_session_arguments, aws_session

CONTENT_TYPE = "application/x-image"
ACCEPT_VERBOSE = "application/json; verbose=true"

EXAMPLE = """
python -m launch.invoke --endpoint-name digits local_test/heldout/7 --top-k 3
python -m launch.invoke --endpoint-name dogs dog.jpg --content-type image/jpeg
python -m launch.invoke --endpoint-name roads street.jpg --accept image/png --out-dir masks/
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser("python -m launch.invoke",
                        "Send images (files or folders) to a SageMaker endpoint.", EXAMPLE)
    parser.add_argument("paths", nargs="+", type=Path, help="image files or folders of images")
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--content-type", default=CONTENT_TYPE,
                        help=f"Content-Type of each request (default {CONTENT_TYPE}; e.g. "
                        "image/jpeg, image/png)")
    parser.add_argument("--top-k", type=int, default=5, help="labels per image (default 5)")
    parser.add_argument("--accept", default=ACCEPT_VERBOSE,
                        help=f"Accept header (default {ACCEPT_VERBOSE!r}; application/json for "
                        "the built-in plain list; image/png, application/x-protobuf or "
                        "application/x-npy for segmentation)")
    parser.add_argument("--out-dir", type=Path, default=Path("masks"),
                        help="where binary answers are saved (default masks/)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON answers")
    add_session_arguments(parser, role=False, bucket=False)
    return parser


def images(paths: list[Path]) -> list[Path]:
    from train.tools.manifests import IMAGE_EXTS  # the image suffixes the dataset tools know

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
        elif path.is_file():
            found.append(path)
        else:
            raise ValueError(f"{path} is neither an image file nor a folder")
    if not found:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTS)}) in {', '.join(map(str, paths))}")
    return found


def runtime_client(args: argparse.Namespace) -> Any:
    return aws_session(args).client("sagemaker-runtime")


def describe(answer: Any, top_k: int) -> str:
    """``7 (0.970)  1 (0.012) ...`` from a verbose answer or a list of probabilities."""
    if isinstance(answer, dict) and "top_k" in answer:
        return "  ".join(f"{t['label']} ({t['probability']:.3f})"
                         for t in answer["top_k"][:top_k])
    if isinstance(answer, dict) and "prediction" in answer:
        answer = answer["prediction"]
    if isinstance(answer, list) and answer and all(
            isinstance(p, int | float) and not isinstance(p, bool) for p in answer):
        return top_k_line(answer, top_k)
    return json.dumps(answer)


def launch(args: argparse.Namespace) -> int:
    files = images(args.paths)
    if args.top_k < 1:
        raise ValueError(f"--top-k {args.top_k} must be at least 1")
    runtime = runtime_client(args)
    accept = media_type(args.accept)
    for path in files:
        reply = runtime.invoke_endpoint(
            EndpointName=args.endpoint_name, ContentType=args.content_type, Accept=args.accept,
            CustomAttributes=f"top_k={args.top_k}", Body=path.read_bytes())
        body = reply["Body"].read()
        answered = media_type(reply.get("ContentType") or accept)
        if answered in BINARY_SUFFIXES:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            target = args.out_dir / f"{path.stem}{BINARY_SUFFIXES[answered]}"
            target.write_bytes(body)
            print(f"{path}: saved to {target}; {summarise_binary(answered, body)}")
            continue
        answer = json.loads(body)
        print(f"{path}: {json.dumps(answer) if args.json else describe(answer, args.top_k)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(launch, get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
