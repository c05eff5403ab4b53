"""The seed notebook's Debugger rules, hook configuration and Profiler configuration.

For SageMaker jobs they go to the Estimator; for local tuning trials ``container_configs``
gives the files SageMaker would write into ``input/config`` for the same flags.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

LOSS_COLLECTION = "CrossEntropyLoss_output_0"
# Where SageMaker tells the container to write tensors (mapped under SAGEMAKER_BASE_DIR locally).
CONTAINER_TENSORS_PATH = "/opt/ml/output/tensors"
HOOK_CONFIG_FILE = "debughookconfig.json"
PROFILER_CONFIG_FILE = "profilerconfig.json"


def add_debugger_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Debugger and Profiler")
    group.add_argument("--debugger", action="store_true",
                       help="add the seed's Debugger rules (loss_not_decreasing, overfit, "
                       "overtraining, poor_weight_initialization) and hook configuration")
    group.add_argument("--train-save-interval", type=int, default=100,
                       help="Debugger hook: save tensors every N training steps (default 100)")
    group.add_argument("--eval-save-interval", type=int, default=10,
                       help="Debugger hook: save tensors every N evaluation steps (default 10)")
    group.add_argument("--profiler", action="store_true",
                       help="profile system metrics every 500 ms and the first 10 steps, with the "
                       "LowGPUUtilization and ProfilerReport rules")


def estimator_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``rules``, ``debugger_hook_config``, ``profiler_config``/``disable_profiler`` for Estimator.

    Without the flags no hook is configured and the profiler is off, so SageMaker starts no
    rule or profiling jobs next to the training job.
    """
    from sagemaker.debugger import (
        CollectionConfig,
        DebuggerHookConfig,
        FrameworkProfile,
        ProfilerConfig,
        ProfilerRule,
        Rule,
        rule_configs,
    )

    rules: list[Any] = []
    kwargs: dict[str, Any] = {"debugger_hook_config": False, "disable_profiler": True}
    if args.debugger:
        rules += [Rule.sagemaker(rule()) for rule in (
            rule_configs.loss_not_decreasing, rule_configs.overfit, rule_configs.overtraining,
            rule_configs.poor_weight_initialization)]
        intervals = {"train.save_interval": str(args.train_save_interval),
                     "eval.save_interval": str(args.eval_save_interval)}
        kwargs["debugger_hook_config"] = DebuggerHookConfig(
            hook_parameters=intervals,
            collection_configs=[CollectionConfig(
                name=LOSS_COLLECTION, parameters={"include_regex": LOSS_COLLECTION, **intervals})],
        )
    if args.profiler:
        rules += [ProfilerRule.sagemaker(rule_configs.LowGPUUtilization()),
                  ProfilerRule.sagemaker(rule_configs.ProfilerReport())]
        kwargs["disable_profiler"] = False
        kwargs["profiler_config"] = ProfilerConfig(
            system_monitor_interval_millis=500,
            framework_profile_params=FrameworkProfile(num_steps=10),
        )
    if rules:
        kwargs["rules"] = rules
    return kwargs


def container_configs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``debughookconfig.json`` and ``profilerconfig.json`` as SageMaker writes them for a job
    with these flags (the S3 output paths left out: a local trial uploads nothing)."""
    kwargs = estimator_kwargs(args)
    files: dict[str, dict[str, Any]] = {}
    hook = kwargs["debugger_hook_config"]
    if hook:
        # As Estimator does: the hook saves its own collections and every rule's.
        collections = set(hook.collection_configs or [])
        for rule in kwargs.get("rules", []):
            collections.update(getattr(rule, "collection_configs", None) or [])
        hook.collection_configs = sorted(collections, key=lambda c: (
            c.name, json.dumps(c.parameters or {}, sort_keys=True)))
        request = hook._to_request_dict()
        request.pop("S3OutputPath", None)
        files[HOOK_CONFIG_FILE] = {"LocalPath": CONTAINER_TENSORS_PATH, **request}
    if not kwargs["disable_profiler"]:
        request = kwargs["profiler_config"]._to_request_dict()
        request.pop("S3OutputPath", None)
        files[PROFILER_CONFIG_FILE] = request
    return files
