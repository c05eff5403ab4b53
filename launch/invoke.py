"""``python -m launch.invoke``: send local images to an endpoint and print what it answers.

Classification: the verbose answer (``Accept: application/json; verbose=true`` and
``CustomAttributes: top_k=N``) printed as the top-k labels per image. Segmentation:
``--accept image/png`` saves each returned mask as ``<out-dir>/<image name>.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from launch.cli import new_parser, run
from launch.session import add_session_arguments

CONTENT_TYPE = "application/x-image"
ACCEPT_VERBOSE = "application/json; verbose=true"
ACCEPT_MASK = "image/png"

EXAMPLE = """
python -m launch.invoke --endpoint-name digits local_test/heldout/7 --top-k 3
python -m launch.invoke --endpoint-name roads street.jpg --accept image/png --out-dir masks/
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser("python -m launch.invoke",
                        "Send images (files or folders) to a SageMaker endpoint.", EXAMPLE)
    parser.add_argument("paths", nargs="+", type=Path, help="image files or folders of images")
    parser.add_argument("--endpoint-name", required=True)
    parser.add_argument("--top-k", type=int, default=5, help="labels per image (default 5)")
    parser.add_argument("--accept", default=ACCEPT_VERBOSE,
                        help=f"Accept header (default {ACCEPT_VERBOSE!r}; image/png for "
                        "segmentation masks)")
    parser.add_argument("--out-dir", type=Path, default=Path("masks"),
                        help="where --accept image/png saves masks (default masks/)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON answers")
    add_session_arguments(parser, role=False)
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


def describe(answer: Any) -> str:
    """``7 (0.970) 1 (0.012) ...`` from a verbose answer; the JSON itself otherwise."""
    if isinstance(answer, dict) and "top_k" in answer:
        return "  ".join(f"{t['label']} ({t['probability']:.3f})" for t in answer["top_k"])
    return json.dumps(answer)


def launch(args: argparse.Namespace) -> int:
    import boto3

    files = images(args.paths)
    runtime = boto3.Session(profile_name=args.profile, region_name=args.region).client(
        "sagemaker-runtime")
    mask = args.accept.split(";")[0].strip() == ACCEPT_MASK
    for path in files:
        reply = runtime.invoke_endpoint(
            EndpointName=args.endpoint_name, ContentType=CONTENT_TYPE, Accept=args.accept,
            CustomAttributes=f"top_k={args.top_k}", Body=path.read_bytes())
        body = reply["Body"].read()
        if mask:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            target = args.out_dir / f"{path.stem}.png"
            target.write_bytes(body)
            print(f"{path}: mask saved to {target}")
            continue
        answer = json.loads(body)
        print(f"{path}: {json.dumps(answer) if args.json else describe(answer)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(launch, get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
