"""``python -m launch.label_job``: a Ground Truth labeling job over raw images in S3 (seed Lab 3).

1. list the images under ``--images`` and write the input manifest (``source-ref`` lines);
2. write the label-categories file and the worker UI template for the task type;
3. take a private work team: ``--workteam-arn``, or ``--create-workteam --email ...``
   (Cognito pool, app client and group, then ``CreateWorkteam``; see ``launch.workteam``);
4. ``CreateLabelingJob`` with the region's built-in pre-annotation and consolidation Lambdas;
5. ``--wait``: poll and report progress; on completion print the output manifest and the
   ``launch.label_workflow`` command that trains on it, or run it (``--train``; the training
   flags follow ``--``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from launch import labeling, workteam
from launch.cli import new_parser, run
from launch.session import add_session_arguments, make_session, resolve_role

DONE = {"Completed", "Failed", "Stopped"}
DEFAULT_BASE_NAME = "sm-vision-labels"

EXAMPLE = """
python -m launch.label_job --images s3://my-bucket/lab3/raw/ --labels RH LH \\
    --instructions "Is this a right hand (RH) or a left hand (LH)?" \\
    --role arn:aws:iam::123456789012:role/SageMakerRole --job-name hands-lab3 \\
    --create-workteam --workteam-name hands-team --email me@example.com \\
    --wait --train -- \\
    --image-uri 123456789012.dkr.ecr.us-east-1.amazonaws.com/sm-vision-train:latest \\
    --instance-type ml.g5.xlarge --hp num_layers=18 --hp num_classes=2 --hp epochs=10 \\
    --hp image_shape=3,224,224 --hp use_pretrained_model=1
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "python -m launch.label_job",
        "Label raw images in S3 with a private Ground Truth work team, then (--wait --train) "
        "train on the labels in Pipe mode.",
        EXAMPLE,
    )
    data = parser.add_argument_group("images and labels")
    data.add_argument("--images", required=True, metavar="S3_PREFIX",
                      help="the raw images, e.g. s3://my-bucket/lab3/raw/")
    labels = data.add_mutually_exclusive_group(required=True)
    labels.add_argument("--labels", nargs="+", metavar="LABEL", help="label categories")
    labels.add_argument("--labels-file", type=Path, help="one label category per line")
    instructions = data.add_mutually_exclusive_group(required=True)
    instructions.add_argument("--instructions", help="what workers are asked")
    instructions.add_argument("--instructions-file", type=Path)
    data.add_argument("--task", choices=sorted(labeling.TASK_TYPES),
                      default="image-classification")
    job = parser.add_argument_group("labeling job")
    job.add_argument("--job-name", help=f"default: {DEFAULT_BASE_NAME}-<time>")
    job.add_argument("--label-attribute", help="the output manifest's label attribute "
                     "(default: the job name; with -ref for segmentation)")
    job.add_argument("--s3-prefix", help="where the input manifest, label categories and UI "
                     "template go (default s3://<bucket>/<job name>/)")
    job.add_argument("--output", metavar="S3_PREFIX",
                     help="Ground Truth's output (default s3://<bucket>/<job name>/output/)")
    job.add_argument("--title", help="task title workers see (default: from the task type)")
    job.add_argument("--workers-per-image", type=int, default=1,
                     help="NumberOfHumanWorkersPerDataObject (default 1)")
    job.add_argument("--task-time-limit", type=int, default=300,
                     help="seconds a worker has per image (default 300)")
    job.add_argument("--task-availability", type=int, default=10 * 24 * 3600,
                     help="seconds a task waits for a worker (default 10 days, the maximum "
                     "for private teams)")
    job.add_argument("--max-concurrent-tasks", type=int, default=1000)
    team = parser.add_argument_group("private work team")
    which = team.add_mutually_exclusive_group(required=True)
    which.add_argument("--workteam-arn")
    which.add_argument("--create-workteam", action="store_true",
                       help="create a Cognito-backed private team (and the region's workforce "
                       "if there is none)")
    team.add_argument("--workteam-name", default="sm-vision-team")
    team.add_argument("--email", action="append", default=[],
                      help="a worker to invite (repeatable; with --create-workteam)")
    after = parser.add_argument_group("after submitting")
    after.add_argument("--wait", action="store_true", help="poll until the job ends")
    after.add_argument("--poll-seconds", type=float, default=60)
    after.add_argument("--train", action="store_true",
                       help="with --wait: run launch.label_workflow on the output manifest; its "
                       "training flags follow --")
    add_session_arguments(parser)
    return parser


def sagemaker_client(boto_session: Any) -> Any:
    """Ground Truth's API (the SDK has no labeling-job calls)."""
    return boto_session.client("sagemaker")


def read_labels(args: argparse.Namespace) -> list[str]:
    if args.labels is not None:
        return list(args.labels)
    return [line.strip() for line in args.labels_file.read_text().splitlines() if line.strip()]


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def list_images(s3: Any, prefix_uri: str) -> list[str]:
    from train.tools.manifests import IMAGE_EXTS

    bucket, prefix = split_s3(prefix_uri)
    uris = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        uris += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", [])
                 if o["Key"].lower().endswith(IMAGE_EXTS)]
    if not uris:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTS)}) under {prefix_uri}")
    return sorted(uris)


def put(s3: Any, uri: str, body: str, content_type: str) -> str:
    bucket, key = split_s3(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=content_type)
    return uri


def check(args: argparse.Namespace, train_args: list[str]) -> None:
    if args.train and not args.wait:
        raise ValueError("--train trains once the job has ended: add --wait")
    if args.train and not train_args:
        raise ValueError("--train needs the training flags after --, e.g. -- --image-uri IMAGE "
                         "--hp num_classes=2")
    if args.create_workteam and not args.email:
        raise ValueError("--create-workteam needs at least one --email of a worker to invite")
    if args.job_name and not labeling.JOB_NAME.match(args.job_name):
        raise ValueError(f"--job-name {args.job_name!r}: letters, digits and single hyphens, "
                         "at most 63 characters")
    if not 1 <= args.workers_per_image <= 9:
        raise ValueError("--workers-per-image must be between 1 and 9")


def workflow_command(manifest: str, args: argparse.Namespace, task: labeling.TaskType,
                     labels: list[str], train_args: list[str]) -> list[str]:
    """The ``launch.label_workflow`` arguments that train on the output manifest."""
    argv = [manifest]
    for flag in ("region", "profile", "bucket", "role"):
        if getattr(args, flag):
            argv += [f"--{flag}", getattr(args, flag)]
    if task.name == "semantic-segmentation":
        argv += ["--task", "segmentation"]
    return argv + (train_args or ["--image-uri", "IMAGE", "--hp", f"num_classes={len(labels)}"])


def default_title(task: labeling.TaskType, labels: list[str]) -> str:
    return f"{task.name.replace('-', ' ').capitalize()}: {', '.join(labels)}"


def report(job: dict[str, Any]) -> str:
    counters = job.get("LabelCounters", {})
    return (f"{job['LabelingJobStatus']}: {counters.get('TotalLabeled', 0)} labeled "
            f"({counters.get('HumanLabeled', 0)} by workers, "
            f"{counters.get('MachineLabeled', 0)} automatically), "
            f"{counters.get('Unlabeled', 0)} to go, "
            f"{counters.get('FailedNonRetryableError', 0)} failed")


def wait(client: Any, name: str, poll_seconds: float) -> dict[str, Any]:
    last = None
    while True:
        job = client.describe_labeling_job(LabelingJobName=name)
        line = report(job)
        if line != last:
            print(line, flush=True)
            last = line
        if job["LabelingJobStatus"] in DONE:
            return job
        time.sleep(poll_seconds)


def launch(args: argparse.Namespace, train_args: list[str]) -> int:
    check(args, train_args)
    task = labeling.TASK_TYPES[args.task]
    labels = read_labels(args)
    labeling.check_labels(task, labels)
    instructions = (args.instructions if args.instructions is not None
                    else args.instructions_file.read_text()).strip()
    if not instructions:
        raise ValueError("the instructions are empty")
    session = make_session(args)
    pre_lambda, consolidation_lambda = labeling.lambda_arns(task, session.boto_region_name)
    name = args.job_name or time.strftime(f"{DEFAULT_BASE_NAME}-%Y%m%d-%H%M%S")
    attribute = labeling.label_attribute(task, name, args.label_attribute)
    role = resolve_role(args, session)
    boto = session.boto_session
    s3 = boto.client("s3")
    images = list_images(s3, args.images)
    prefix = (args.s3_prefix or f"s3://{session.default_bucket()}/{name}/").rstrip("/")
    output = args.output or f"s3://{session.default_bucket()}/{name}/output/"
    manifest = put(s3, f"{prefix}/input.manifest", labeling.input_manifest(images),
                   "application/x-ndjson")
    categories = put(s3, f"{prefix}/label-categories.json",
                     json.dumps(labeling.label_categories(labels), indent=2), "application/json")
    template = put(s3, f"{prefix}/template.liquid",
                   labeling.ui_template(task, labels, instructions), "text/html")
    print(f"input manifest: {manifest} ({len(images)} images)")
    client = sagemaker_client(boto)
    team_arn = args.workteam_arn
    if args.create_workteam:
        team_arn, workforce = workteam.create_workteam(
            boto.client("cognito-idp"), client, args.workteam_name, args.email,
            f"Labels images for {name}")
        print(f"work team: {team_arn} ({len(args.email)} invited"
              f"{'; they sign in at ' + workforce.portal if workforce.portal else ''})")
    client.create_labeling_job(
        LabelingJobName=name,
        LabelAttributeName=attribute,
        InputConfig={"DataSource": {"S3DataSource": {"ManifestS3Uri": manifest}}},
        OutputConfig={"S3OutputPath": output},
        RoleArn=role,
        LabelCategoryConfigS3Uri=categories,
        HumanTaskConfig={
            "WorkteamArn": team_arn,
            "UiConfig": {"UiTemplateS3Uri": template},
            "PreHumanTaskLambdaArn": pre_lambda,
            "TaskKeywords": list(task.keywords),
            "TaskTitle": (args.title or default_title(task, labels))[:128],
            "TaskDescription": instructions[:255],
            "NumberOfHumanWorkersPerDataObject": args.workers_per_image,
            "TaskTimeLimitInSeconds": args.task_time_limit,
            "TaskAvailabilityLifetimeInSeconds": args.task_availability,
            "MaxConcurrentTaskCount": args.max_concurrent_tasks,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": consolidation_lambda},
        },
    )
    print(f"labeling job: {name} (label attribute {attribute!r}, output under {output})")
    if not args.wait:
        print(f"follow it with: aws sagemaker describe-labeling-job --labeling-job-name {name}")
        return 0
    job = wait(client, name, args.poll_seconds)
    if job["LabelingJobStatus"] != "Completed":
        raise ValueError(f"labeling job {name} {job['LabelingJobStatus']}: "
                         f"{job.get('FailureReason', 'no reason given')}")
    output_manifest = job["LabelingJobOutput"]["OutputDatasetS3Uri"]
    print(f"output manifest: {output_manifest}")
    argv = workflow_command(output_manifest, args, task, labels, train_args)
    if not args.train:
        print(f"train on it with: python -m launch.label_workflow {shlex.join(argv)}")
        return 0
    from launch import label_workflow

    print(f"training: python -m launch.label_workflow {shlex.join(argv)}", flush=True)
    return label_workflow.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    train_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, train_args = argv[:cut], argv[cut + 1:]
    return run(lambda args: launch(args, train_args), get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
