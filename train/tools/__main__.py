"""One command line for the dataset tools; each subcommand lives in its own module.

    python -m train.tools pack images/ out/digits --train-ratio 0.8
    python -m train.tools index out/digits.rec
    python -m train.tools split output.manifest --out-dir manifests/
    python -m train.tools rewrite train.manifest train.lab7.manifest --replace lab# lab7
    python -m train.tools create-manifest --folder images/ out.manifest --s3-prefix s3://b/p/
    python -m train.tools stats digits_train.rec
"""

from __future__ import annotations

import argparse
import sys

from train.errors import UserError
from train.tools import manifests, pack, stats


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.tools",
        description="Prepare datasets for the train command: RecordIO packing, manifest "
        "splitting and rewriting, manifest creation, statistics.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pack.add_arguments(sub)
    manifests.add_arguments(sub)
    stats.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UserError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
