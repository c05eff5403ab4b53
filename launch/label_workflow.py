"""``python -m launch.label_workflow``: Ground Truth labels to a Pipe-mode training job (Lab 3).

1. split the labeling job's ``output.manifest`` (a local file or its ``s3://`` URI, as
   ``launch.label_job`` prints it) 80/20, stratified by label (``python -m train.tools split``,
   the same split the dataset tools make);
2. upload ``train.manifest`` and ``validation.manifest`` to S3;
3. start training with them as augmented-manifest channels in Pipe mode
   (``AttributeNames`` = image reference, label attribute; ``RecordWrapperType`` RecordIO),
   with ``num_training_samples`` set from the split unless given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from launch.channels import DATA_FORMATS, Channel
from launch.cli import new_parser, run
from launch.estimator import (
    add_estimator_arguments,
    build_estimator,
    check_job_arguments,
    job_name,
)
from launch.session import make_session

if TYPE_CHECKING:
    import sagemaker

SPLIT_NAMES = ("train.manifest", "validation.manifest")
CHANNELS = ("train", "validation")

EXAMPLE = """
python -m launch.label_workflow output.manifest \\
    --image-uri 123456789012.dkr.ecr.us-east-1.amazonaws.com/sm-vision-train:latest \\
    --role arn:aws:iam::123456789012:role/SageMakerRole --instance-type ml.g5.xlarge \\
    --s3-prefix s3://my-bucket/lab3/manifests \\
    --hp num_layers=18 --hp num_classes=2 --hp epochs=10 --hp image_shape=3,224,224 \\
    --hp use_pretrained_model=1 --wait
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "python -m launch.label_workflow",
        "Split a Ground Truth output.manifest, upload the halves, and train on them in Pipe "
        "mode.",
        EXAMPLE,
    )
    parser.add_argument("manifest", help="the labeling job's output.manifest: a file or an "
                        "s3:// URI")
    split = parser.add_argument_group("split and upload")
    split.add_argument("--label-attribute",
                       help="label attribute (default: the one non-metadata attribute)")
    split.add_argument("--train-ratio", type=float, default=0.8)
    split.add_argument("--split-seed", type=int, default=0)
    split.add_argument("--out-dir", type=Path, default=Path("manifests"),
                       help="where the split manifests are written (default manifests/)")
    split.add_argument("--s3-prefix", help="upload the manifests here (default "
                       "s3://<bucket>/<job name>/manifests)")
    add_estimator_arguments(parser)
    parser.add_argument("--job-name", help="exact job name (default: <base-job-name>-<time>)")
    parser.add_argument("--wait", action="store_true", help="wait and stream the logs")
    return parser


def local_manifest(args: argparse.Namespace, session: sagemaker.Session) -> Path:
    """The manifest as a local file: an s3:// URI is downloaded into ``--out-dir``."""
    if not args.manifest.startswith("s3://"):
        path = Path(args.manifest)
        if not path.is_file():
            raise ValueError(f"{path}: no such manifest file")
        return path
    from sagemaker.s3 import S3Downloader

    # That one object (S3Downloader.download would take every key the URI prefixes).
    text = S3Downloader.read_file(args.manifest, sagemaker_session=session)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / args.manifest.rsplit("/", 1)[-1]
    path.write_text(text, encoding="utf-8")
    print(f"downloaded {args.manifest} to {path}")
    return path


def split_manifest(args: argparse.Namespace, manifest: Path) -> tuple[str, str, int]:
    """Split into ``--out-dir``; returns (image attribute, label attribute, training lines)."""
    from train.data.manifest import choose_attributes, parse_line
    from train.tools.__main__ import main as tools_main

    command = ["split", str(manifest), "--out-dir", str(args.out_dir),
               "--train-ratio", str(args.train_ratio), "--seed", str(args.split_seed),
               "--names", *SPLIT_NAMES]
    if args.label_attribute:
        command += ["--label-attribute", args.label_attribute]
    if tools_main(command) != 0:
        raise ValueError(f"could not split {manifest} (see the message above)")
    with open(manifest, encoding="utf-8") as fh:
        first = next(line for line in fh if line.strip())
    attributes = choose_attributes(parse_line(first, f"{manifest.name}, line 1"), (),
                                   args.label_attribute, manifest.name)
    train_lines = (args.out_dir / SPLIT_NAMES[0]).read_text(encoding="utf-8").splitlines()
    return attributes.image, attributes.label, sum(1 for line in train_lines if line.strip())


def launch(args: argparse.Namespace) -> int:
    check_job_arguments(args)
    session = make_session(args)
    image_attribute, label_attribute, train_count = split_manifest(
        args, local_manifest(args, session))
    name = args.job_name or job_name(args)
    prefix = (args.s3_prefix or f"s3://{session.default_bucket()}/{name}/manifests").rstrip("/")
    bucket, _, key_prefix = prefix.removeprefix("s3://").partition("/")
    channels = []
    for channel, file_name in zip(CHANNELS, SPLIT_NAMES, strict=True):
        uri = session.upload_data(str(args.out_dir / file_name), bucket=bucket,
                                  key_prefix=key_prefix)
        print(f"uploaded {args.out_dir / file_name} to {uri}")
        channels.append(Channel(channel, uri, **{
            **DATA_FORMATS["manifest"], "attribute_names": (image_attribute, label_attribute)}))
    estimator = build_estimator(args, session, input_mode=DATA_FORMATS["manifest"]["input_mode"],
                                name=name, defaults={"num_training_samples": str(train_count)})
    estimator.fit({c.name: c.to_training_input() for c in channels}, wait=args.wait,
                  logs="All" if args.wait else "None", job_name=name)
    print(f"training job: {estimator.latest_training_job.name} "
          f"(AttributeNames {image_attribute}, {label_attribute}; Pipe mode)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(launch, get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
