"""``python -m launch.tune``: a SageMaker tuning job, or the same search as local processes.

Defaults are the seed notebook's tuning job: ``lr`` continuous 0.001-0.1 and ``batch-size``
categorical 32-512, minimising ``average test loss`` (regex ``Test set: Average loss:
([0-9\\.]+)``). ``--local`` runs each trial as the ``train`` command on this machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from launch import debugger, local_tuning, metric_definitions
from launch.channels import add_channel_arguments, channels_from_args, default_input_mode
from launch.cli import new_parser, run
from launch.estimator import (
    add_estimator_arguments,
    build_estimator,
    check_job_arguments,
    metric_definitions_from_args,
)
from launch.hyperparameters import hyperparameters_from_args
from launch.ranges import Range, ranges_from
from launch.search import STRATEGIES
from launch.session import make_session
from launch.trial import default_train_command

SAGEMAKER_STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
OBJECTIVE_TYPES = ("Minimize", "Maximize")
# CreateHyperParameterTuningJob's HyperParameterTuningJobName: at most 32 characters.
TUNING_JOB_NAME_MAX = 32

EXAMPLE = """
# on SageMaker: 8 jobs, 2 at a time, the seed's ranges and objective
python -m launch.tune \\
    --image-uri 123456789012.dkr.ecr.us-east-1.amazonaws.com/sm-vision-train:latest \\
    --role arn:aws:iam::123456789012:role/SageMakerRole --instance-type ml.g5.xlarge \\
    --channel train=s3://my-bucket/dogImages/train/ \\
    --channel validation=s3://my-bucket/dogImages/valid/ --data-format folder \\
    --hp architecture=vgg16 --hp use_pretrained_model=1 --hp num_classes=133 --hp epochs=5 \\
    --max-jobs 8 --max-parallel-jobs 2 --wait

# on this machine: 4 trials of the train command, Bayesian search, 1 at a time
python -m launch.tune --local --work-dir runs/hpo \\
    --channel train=data/digits/train --channel validation=data/digits/validation \\
    --hp num_layers=18 --hp image_shape=3,32,32 --hp epochs=2 --hp num_workers=0 \\
    --range lr=continuous:0.0001:0.01:log --range batch-size=categorical:16,32,64 \\
    --max-jobs 4
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "python -m launch.tune",
        "Tune hyperparameters: a SageMaker tuning job over the sm-vision image, or (--local) "
        "the same ranges, objective and Minimize/Maximize semantics with local train processes.",
        EXAMPLE,
    )
    add_channel_arguments(parser)
    add_estimator_arguments(parser, image_required=False)
    tuning = parser.add_argument_group("tuning")
    tuning.add_argument("--range", action="append", default=[], metavar="NAME=TYPE:SPEC",
                        help="a range: lr=continuous:0.001:0.1[:log|linear|reverse-log|auto], "
                        "epochs=integer:5:20, batch-size=categorical:32,64 (repeatable; "
                        "default: the seed's lr and batch-size ranges)")
    tuning.add_argument("--ranges-file", type=Path, metavar="JSON",
                        help='ranges as JSON: {"lr": {"type": "continuous", "min": 0.001, '
                        '"max": 0.1, "scaling": "log"}}')
    tuning.add_argument("--objective-metric",
                        help="metric to optimise (default: 'average test loss', or "
                        "validation:mIOU for segmentation)")
    tuning.add_argument("--objective-type", choices=OBJECTIVE_TYPES,
                        help="default: Minimize for the default objective and names with "
                        "'loss' in them, else Maximize")
    tuning.add_argument("--objective-regex",
                        help="regex for the objective when it is not a known metric")
    tuning.add_argument("--strategy", type=str.capitalize, default="Bayesian",
                        choices=SAGEMAKER_STRATEGIES,
                        help="search strategy (default Bayesian; --local: Bayesian or Random)")
    tuning.add_argument("--max-jobs", type=int, default=4, help="trials in all (default 4)")
    tuning.add_argument("--max-parallel-jobs", type=int,
                        help="trials at once (default 2 on SageMaker; locally one per two CPUs)")
    tuning.add_argument("--seed", type=int, help="random seed of the search")
    tuning.add_argument("--job-name", help="exact tuning job name, at most 32 characters "
                        "(default: <base-job-name>-<seconds>-<random>, unique)")
    tuning.add_argument("--wait", action="store_true",
                        help="SageMaker: wait for the tuning job and print the best job")
    local = parser.add_argument_group("local tuning (--local)")
    local.add_argument("--local", action="store_true",
                       help="run trials as local train processes; channels are local folders")
    local.add_argument("--work-dir", type=Path,
                       help="one SAGEMAKER_BASE_DIR per trial under it (default "
                       "local_tuning/<time>)")
    local.add_argument("--train-command", nargs="+", default=None,
                       help="the command each trial runs (default: this venv's train)")
    local.add_argument("--copy-channels", action="store_true",
                       help="copy channel files into each trial (default: hard-link them, "
                       "copying only where a link cannot be made)")
    return parser


def objective(args: argparse.Namespace, definitions: list[dict[str, str]], *,
              regex_needed: bool = True) -> tuple[str, str | None, str]:
    """(metric name, regex, Minimize|Maximize); adds the regex to ``definitions`` if new.

    Without metric definitions (a built-in algorithm image, ``--no-metric-definitions``) the
    default objective is the algorithm's own metric and SageMaker needs no regex for it."""
    built_in = args.no_metric_definitions and not regex_needed
    defaults = metric_definitions.BUILT_IN_OBJECTIVE if built_in else (
        metric_definitions.DEFAULT_OBJECTIVE)
    default_name, default_type = defaults[args.task]
    name = args.objective_metric or default_name
    kind = args.objective_type or (
        default_type if name == default_name else
        "Minimize" if "loss" in name.lower() else "Maximize")
    known = {d["Name"]: d["Regex"] for d in definitions}
    regex = args.objective_regex or known.get(name)
    if regex is None:
        if built_in:
            return name, None, kind
        raise ValueError(f"objective {name!r} is not one of the metrics ({', '.join(known)}); "
                         "give --objective-regex or --metric NAME=REGEX")
    if name not in known:
        definitions.append({"Name": name, "Regex": regex})
    return name, regex, kind


def tuning_job_name(args: argparse.Namespace) -> str:
    """``--job-name``, or a name unique to the second plus a random suffix."""
    from sagemaker.utils import unique_name_from_base

    if args.job_name:
        if len(args.job_name) > TUNING_JOB_NAME_MAX:
            raise ValueError(f"--job-name {args.job_name!r} is longer than SageMaker's "
                             f"{TUNING_JOB_NAME_MAX} characters for tuning jobs")
        return args.job_name
    return unique_name_from_base(args.base_job_name, max_length=TUNING_JOB_NAME_MAX)


def refuse_debugger(args: argparse.Namespace) -> None:
    flags = [flag for flag, on in (("--debugger", args.debugger), ("--profiler", args.profiler))
             if on]
    if flags:
        raise ValueError(f"{' and '.join(flags)}: a SageMaker tuning job carries no Debugger "
                         "rules, hook or profiler configuration (its training job definition "
                         "has no such fields); drop the flag, and run python -m launch.train "
                         "with it on the best job's hyperparameters (or tune with --local, "
                         "which gives every trial the hook and profiler)")


def tune_on_sagemaker(args: argparse.Namespace, ranges: list[Range]) -> int:
    from sagemaker.tuner import HyperparameterTuner

    if not args.image_uri:
        raise ValueError("--image-uri is required (or use --local)")
    refuse_debugger(args)
    channels = channels_from_args(args)
    job_name = tuning_job_name(args)
    session = make_session(args)
    # With --spot and no --checkpoint-s3-uri, checkpoints go under the tuning job's own prefix.
    estimator = build_estimator(args, session, input_mode=default_input_mode(args),
                                name=job_name)
    definitions = list(estimator.metric_definitions or [])
    name, _, kind = objective(args, definitions, regex_needed=False)
    tuner = HyperparameterTuner(
        estimator,
        objective_metric_name=name,
        hyperparameter_ranges={r.name: r.to_sdk() for r in ranges},
        metric_definitions=definitions or None,
        strategy=args.strategy,
        objective_type=kind,
        max_jobs=args.max_jobs,
        max_parallel_jobs=args.max_parallel_jobs or 2,
        base_tuning_job_name=args.base_job_name,
        random_seed=args.seed,
    )
    tuner.fit({c.name: c.to_training_input() for c in channels}, job_name=job_name,
              wait=args.wait)
    job = tuner.latest_tuning_job.name
    print(f"tuning job: {job} ({kind} {name!r}, {args.max_jobs} jobs)")
    if args.wait:
        print_best(tuner.describe())
    return 0


def print_best(description: dict) -> None:
    best = description.get("BestTrainingJob")
    print(f"status: {description.get('HyperParameterTuningJobStatus')}")
    if not best:
        print("no training job reported an objective")
        return
    metric = best.get("FinalHyperParameterTuningJobObjectiveMetric", {})
    print(f"best training job: {best['TrainingJobName']} "
          f"({metric.get('MetricName')} = {metric.get('Value')})")
    for key, value in sorted(best.get("TunedHyperParameters", {}).items()):
        print(f"  {key} = {value}")


def tune_locally(args: argparse.Namespace, ranges: list[Range]) -> int:
    if args.strategy.lower() not in STRATEGIES:
        raise ValueError(f"--strategy {args.strategy} is not available with --local; use "
                         "Bayesian or Random")
    if args.instance_count != 1:
        raise ValueError(f"--instance-count {args.instance_count}: local trials run on one host "
                         "each; tune multi-instance jobs on SageMaker, or run one multi-host job "
                         "by hand (README \"Local process mode\")")
    channels = channels_from_args(args)
    static = {**local_tuning.manifest_hyperparameters(channels), **hyperparameters_from_args(args)}
    definitions = metric_definitions_from_args(args, static)
    name, regex, kind = objective(args, definitions)
    assert regex is not None  # objective() raises without one when regex_needed
    config = local_tuning.LocalTuning(
        ranges=ranges,
        static_hyperparameters=static,
        channels=channels,
        objective_name=name,
        objective_regex=regex,
        minimize=kind == "Minimize",
        strategy=args.strategy.lower(),
        max_trials=args.max_jobs,
        parallel=args.max_parallel_jobs or local_tuning.default_parallel(),
        work_dir=args.work_dir or Path("local_tuning") / time.strftime("%Y%m%d-%H%M%S"),
        command=args.train_command or default_train_command(),
        max_run=args.max_run,
        seed=args.seed,
        copy_channels=args.copy_channels,
        config_files=debugger.container_configs(args),
    )
    print(f"local tuning in {config.work_dir}: {config.max_trials} trial(s), "
          f"{config.parallel} at a time, {config.strategy} search, {kind} {name!r}", flush=True)
    trials = local_tuning.run(config)
    print()
    print(local_tuning.table(trials))
    best = local_tuning.best_trial(trials, config.minimize)
    if best is None:
        print("\nno trial reported the objective; see train.log in each trial folder")
        return 1
    hps = " ".join(f"{k}={v}" for k, v in best.hyperparameters.items())
    print(f"\nbest: {best.name} {name} = {best.objective:g} ({hps}); model in "
          f"{best.base_dir / 'model'}")
    if config.config_files:
        print(f"Debugger rules and report: python -m train.debugger report --base-dir "
              f"{best.base_dir} (any trial's folder)")
    return 0


def launch(args: argparse.Namespace) -> int:
    check_job_arguments(args)
    ranges = ranges_from(args.range, args.ranges_file)
    if args.local:
        return tune_locally(args, ranges)
    return tune_on_sagemaker(args, ranges)


def main(argv: list[str] | None = None) -> int:
    return run(launch, get_args_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
