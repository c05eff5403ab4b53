"""``python -m train.debugger report``: SageMaker's Debugger/Profiler rules on a local job.

Reads the tensors (``output/tensors`` or the hook config's ``LocalPath``) and the profiler
output (``output/profiler``) of a finished job under ``$SAGEMAKER_BASE_DIR`` (or
``--base-dir``), evaluates the rules, writes ``report.html`` and ``verdicts.json`` and prints a
one-line summary. Exit 0 whatever the verdicts (``--fail-on-issues`` exits 3 on
IssuesFound, for CI); 1 when there is nothing to read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from train.contract import (
    DEFAULT_PROFILER_DIR,
    DEFAULT_TENSORS_DIR,
    TrainingEnv,
    base_dir_from_environ,
)
from train.debugger.config import load_hook_config, load_profiler_settings
from train.errors import UserError

EXIT_ISSUES = 3
REPORT_DIR = "output/debug-report"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.debugger", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="evaluate the rules and write the HTML report")
    report.add_argument("--base-dir", type=Path, default=None,
                        help="the job's /opt/ml tree (default: $SAGEMAKER_BASE_DIR or /opt/ml)")
    report.add_argument("--tensors", type=Path, default=None,
                        help="smdebug output folder (default: the hook config's LocalPath, "
                             "else BASE/output/tensors); also a downloaded debug-output/")
    report.add_argument("--profiler", type=Path, default=None,
                        help="profiler output folder (default: BASE/output/profiler)")
    report.add_argument("--out-dir", type=Path, default=None,
                        help=f"where report.html and verdicts.json go (default: BASE/"
                             f"{REPORT_DIR})")
    report.add_argument("--rule-parameter", action="append", default=[], metavar="RULE.NAME=V",
                        help="override a rule parameter, e.g. Overfit.ratio_threshold=0.5 "
                             "(repeatable)")
    report.add_argument("--fail-on-issues", action="store_true",
                        help=f"exit {EXIT_ISSUES} when a rule found issues")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        return report(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def report(args: argparse.Namespace) -> int:
    from train.debugger import evidence as evidence_module
    from train.debugger import report as report_module
    from train.debugger import rules

    env = TrainingEnv(base_dir=args.base_dir or base_dir_from_environ())
    tensors, profiler = _locate(env, args.tensors, args.profiler)
    if not tensors.is_dir() and not profiler.is_dir():
        raise UserError(f"neither {tensors} nor {profiler} exists: run the job with a "
                        "debughookconfig.json / profilerconfig.json (see README, Debugger), "
                        "or point --tensors / --profiler at the output")
    overrides = parse_overrides(args.rule_parameter)
    evidence = evidence_module.collect(tensors, profiler)
    try:
        verdicts = rules.evaluate_all(evidence, overrides)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad --rule-parameter: {exc}") from exc
    out_dir = args.out_dir or env.path(REPORT_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    html_path.write_text(report_module.render(evidence, verdicts,
                                              f"Debugger report: {env.base_dir}"))
    (out_dir / "verdicts.json").write_text(
        json.dumps([v.to_dict() for v in verdicts], indent=1) + "\n")
    print(f"debug report: {html_path}")
    print("rules: " + "; ".join(v.summary() for v in verdicts))
    found = any(v.status == rules.ISSUES_FOUND for v in verdicts)
    return EXIT_ISSUES if found and args.fail_on_issues else 0


def _locate(env: TrainingEnv, tensors: Path | None,
            profiler: Path | None) -> tuple[Path, Path]:
    if tensors is None:
        hook = load_hook_config(env)
        tensors = hook.out_dir if hook else env.path(DEFAULT_TENSORS_DIR)
    if profiler is None:
        settings = load_profiler_settings(env)
        profiler = settings.out_dir if settings else env.path(DEFAULT_PROFILER_DIR)
    return tensors, profiler


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        rule, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise UserError(f"--rule-parameter {item!r}: use RULE.NAME=VALUE, e.g. "
                            "Overfit.patience=2")
        overrides.setdefault(rule, {})[name] = _number(value)
    return overrides


def _number(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            continue
    return value


if __name__ == "__main__":
    sys.exit(main())
