"""Local hyperparameter tuning: SageMaker HPO's semantics, trials as local ``train`` processes.

Same ranges, objective regex and Minimize/Maximize as a tuning job; ``bayesian`` or
``random`` search; at most ``parallel`` trials at once, each proposed from the trials
finished so far. The results go to ``<work dir>/trials.json`` and a table on stdout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from launch.channels import Channel
from launch.ranges import Range
from launch.search import Observation, make_strategy
from launch.trial import Trial, TrialRunner, prepare, trial_env


@dataclass(frozen=True)
class LocalTuning:
    ranges: Sequence[Range]
    static_hyperparameters: dict[str, str]
    channels: Sequence[Channel]
    objective_name: str
    objective_regex: str
    minimize: bool
    strategy: str  # "bayesian" | "random"
    max_trials: int
    parallel: int
    work_dir: Path
    command: Sequence[str]
    max_run: float
    seed: int | None = None
    copy_channels: bool = False
    # Extra files for each trial's input/config (Debugger/Profiler configs), name -> JSON.
    config_files: dict[str, dict] = field(default_factory=dict)


def default_parallel() -> int:
    """One trial per two cores: each trial is itself multi-threaded (1 on a 2-core machine)."""
    return max(1, (os.cpu_count() or 1) // 2)


def manifest_hyperparameters(channels: Sequence[Channel]) -> dict[str, str]:
    """``label_attribute`` for manifest channels: SageMaker writes no AttributeNames into
    ``inputdataconfig.json``, so a trial learns the label attribute from its hyperparameters."""
    labels = {c.attribute_names[1] for c in channels if len(c.attribute_names) >= 2}
    if len(labels) > 1:
        raise ValueError(f"manifest channels name different label attributes {sorted(labels)}; "
                         "give one with --hp label_attribute=NAME")
    return {"label_attribute": labels.pop()} if labels else {}


def check(config: LocalTuning) -> None:
    if config.max_trials < 1:
        raise ValueError("--max-jobs must be at least 1")
    try:
        groups = re.compile(config.objective_regex).groups
    except re.error as exc:
        raise ValueError(f"objective regex {config.objective_regex!r}: {exc}") from None
    if groups < 1:
        raise ValueError(f"objective regex {config.objective_regex!r} needs a capture group "
                         "around the number, e.g. 'loss: ([0-9\\.]+)'")
    if shutil.which(config.command[0]) is None:
        raise ValueError(f"train command {config.command[0]!r} not found; install the project "
                         "(pip install -e .) or pass --train-command")
    cpus = os.cpu_count() or 1
    if not 1 <= config.parallel <= cpus:
        raise ValueError(f"--max-parallel-jobs {config.parallel} must be between 1 and the "
                         f"{cpus} CPUs here")
    for channel in config.channels:
        if channel.source.startswith("s3://"):
            raise ValueError(f"channel {channel.name!r}: local tuning reads local folders, "
                             f"not {channel.source}")
        if not Path(channel.source).is_dir():
            raise ValueError(f"channel {channel.name!r}: {channel.source} is not a folder")
        if channel.input_mode == "Pipe":
            raise ValueError(f"channel {channel.name!r}: Pipe mode is not emulated by local "
                             "tuning; use File (the image reads the same data from folders)")
    if config.work_dir.exists() and any(config.work_dir.iterdir()):
        raise ValueError(f"{config.work_dir} is not empty; choose a new --work-dir")


def run(config: LocalTuning) -> list[Trial]:
    check(config)
    strategy = make_strategy(config.strategy, config.ranges, config.seed)
    runner = TrialRunner(config.command, re.compile(config.objective_regex),
                         max_run=config.max_run, env=trial_env(config.parallel))
    tuned = {r.name for r in config.ranges}
    static = {k: v for k, v in config.static_hyperparameters.items() if k not in tuned}
    trials: list[Trial] = []
    running: dict[Future[Trial], Trial] = {}
    with ThreadPoolExecutor(max_workers=config.parallel) as pool:
        try:
            while len(trials) < config.max_trials or running:
                while len(running) < config.parallel and len(trials) < config.max_trials:
                    number = len(trials) + 1
                    trial = Trial(number, strategy.suggest(_history(trials, config)),
                                  config.work_dir / f"trial-{number:03d}")
                    prepare(trial, static, config.channels, config.objective_name,
                            copy=config.copy_channels, config_files=config.config_files)
                    print(f"{trial.name}: started {_format_hps(trial.hyperparameters)}",
                          flush=True)
                    trials.append(trial)
                    running[pool.submit(runner.run, trial)] = trial
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    trial = running.pop(future)
                    future.result()
                    print(f"{trial.name}: {trial.status} objective={_format_objective(trial)} "
                          f"in {trial.seconds:.0f} s", flush=True)
        except KeyboardInterrupt:
            runner.stop_all()
            raise
    (config.work_dir / "trials.json").write_text(json.dumps(
        [_as_json(t) for t in trials], indent=2))
    return trials


def _history(trials: list[Trial], config: LocalTuning) -> list[Observation]:
    sign = 1.0 if config.minimize else -1.0
    return [(t.hyperparameters, sign * t.objective) for t in trials
            if t.status == "Completed" and t.objective is not None]


def best_trial(trials: Sequence[Trial], minimize: bool) -> Trial | None:
    scored = [(t.objective, t.number, t) for t in trials
              if t.status == "Completed" and t.objective is not None]
    if not scored:
        return None
    # Ties go to the earlier trial.
    return (min(scored) if minimize else max(scored, key=lambda s: (s[0], -s[1])))[2]


def table(trials: Sequence[Trial]) -> str:
    rows = [("trial", "hyperparameters", "objective", "status", "duration")]
    rows += [(t.name, _format_hps(t.hyperparameters), _format_objective(t), t.status,
              f"{t.seconds:.0f} s") for t in trials]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _format_hps(hyperparameters: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in hyperparameters.items())


def _format_objective(trial: Trial) -> str:
    return "-" if trial.objective is None else f"{trial.objective:.6g}"


def _as_json(trial: Trial) -> dict[str, object]:
    return {"trial": trial.name, "hyperparameters": trial.hyperparameters,
            "objective": trial.objective, "status": trial.status,
            "seconds": round(trial.seconds, 1), "failure": trial.failure,
            "base_dir": str(trial.base_dir)}
