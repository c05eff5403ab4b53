"""One local tuning trial: a SageMaker-style tree, the ``train`` command on it, its objective.

Each trial gets its own ``SAGEMAKER_BASE_DIR`` (config files written the way SageMaker writes
them; channels linked or copied from local folders), so checkpoints, models and outcome files
never mix. The objective is the last value the metric regex matches in the trial's log, as
SageMaker reports a tuning job's final objective.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from launch.channels import Channel

# After SIGTERM, train saves a checkpoint and exits within seconds; then it is killed.
STOP_GRACE_SECONDS = 60
TUNING_OBJECTIVE_HP = "_tuning_objective_metric"  # SageMaker adds it; train ignores it
LOG_FILE = "train.log"


@dataclass
class Trial:
    number: int
    hyperparameters: dict[str, str]  # the tuned ones
    base_dir: Path
    status: str = "Pending"  # Completed, Failed, Stopped, NoObjective
    objective: float | None = None
    seconds: float = 0.0
    failure: str = ""

    @property
    def name(self) -> str:
        return self.base_dir.name


def prepare(trial: Trial, static: Mapping[str, str], channels: Sequence[Channel],
            objective_name: str, *, copy: bool = False,
            config_files: Mapping[str, object] | None = None) -> None:
    """Write the trial's ``input/config`` and put its channels under ``input/data``.

    ``config_files`` are further files for ``input/config`` (Debugger/Profiler configs)."""
    config = trial.base_dir / "input" / "config"
    config.mkdir(parents=True)
    hyperparameters = {**static, **trial.hyperparameters, TUNING_OBJECTIVE_HP: objective_name}
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
    (config / "inputdataconfig.json").write_text(
        json.dumps({c.name: c.to_input_data_config() for c in channels}, indent=2))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"]}))
    for name, content in (config_files or {}).items():
        (config / name).write_text(json.dumps(content, indent=2))
    data = trial.base_dir / "input" / "data"
    data.mkdir(parents=True)
    for channel in channels:
        source = Path(channel.source).resolve()
        # Hard links, not symlinks: the train command never reads outside its input tree.
        shutil.copytree(source, data / channel.name,
                        copy_function=shutil.copy2 if copy else _link_or_copy)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copy2(source, target)


def last_objective(regex: re.Pattern[str], log: str) -> float | None:
    """The last number the regex's first group matches, line by line."""
    value = None
    for line in log.splitlines():
        match = regex.search(line)
        if match:
            try:
                value = float(match.group(1))
            except (IndexError, ValueError):
                continue
    return value


class TrialRunner:
    """Runs trials as ``train`` processes; ``stop_all`` ends the running ones (Ctrl-C)."""

    def __init__(self, command: Sequence[str], objective_regex: re.Pattern[str], *,
                 max_run: float, env: Mapping[str, str]) -> None:
        self.command = list(command)
        self.objective_regex = objective_regex
        self.max_run = max_run
        self.env = dict(env)
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def run(self, trial: Trial) -> Trial:
        env = {**self.env, "SAGEMAKER_BASE_DIR": str(trial.base_dir), "PYTHONUNBUFFERED": "1"}
        log_path = trial.base_dir / LOG_FILE
        start = time.monotonic()
        trial.status = "InProgress"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(self.command, env=env, stdout=log, stderr=subprocess.STDOUT)
            with self._lock:
                self._running.add(proc)
            try:
                stopped = _wait(proc, self.max_run)
            finally:
                with self._lock:
                    self._running.discard(proc)
        trial.seconds = time.monotonic() - start
        objective = last_objective(self.objective_regex, log_path.read_text(errors="replace"))
        failure = trial.base_dir / "output" / "failure"
        reason = next(iter(failure.read_text().splitlines()), "") if failure.is_file() else ""
        if stopped:
            trial.status = "Stopped"
            trial.failure = reason or f"ran longer than --max-run {self.max_run:g} s"
        elif proc.returncode != 0:
            trial.status = "Failed"
            trial.failure = reason or f"exit code {proc.returncode}; see {log_path}"
        elif objective is None:
            trial.status = "NoObjective"
            trial.failure = f"no line in {log_path} matches {self.objective_regex.pattern!r}"
        else:
            trial.status = "Completed"
            trial.objective = objective
        return trial

    def stop_all(self) -> None:
        with self._lock:
            running = list(self._running)
        for proc in running:
            proc.send_signal(signal.SIGTERM)


def _wait(proc: subprocess.Popen[bytes], max_run: float) -> bool:
    """Wait for the process; past ``max_run`` SIGTERM it (train checkpoints), then kill it."""
    try:
        proc.wait(timeout=max_run)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return True


def default_train_command() -> list[str]:
    """The ``train`` console script beside this Python (the project's venv)."""
    return [str(Path(sys.executable).parent / "train")]


def trial_env(parallel: int) -> dict[str, str]:
    """The environment for trials: CPU threads shared out between the parallel ones."""
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    return env
