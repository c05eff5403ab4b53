"""What a finished job left for the rules: loss curves, activation and gradient statistics,
system metrics and the framework profile, read into plain numbers.

Tensors are read with smdebug's trial API (``smdebug.trials.create_trial``), the same reader
SageMaker's rule containers use; system metrics and operators from the layout written by
``train.debugger.profiler``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from train.debugger.config import FRAMEWORK_DIR, SYSTEM_DIR

log = logging.getLogger(__name__)

ACTIVATION_INPUTS_REGEX = ".*relu_input"
# How many saved steps of activations/gradients are read: PoorWeightInitialization looks at
# the first `steps` (10) only, and full tensors are large.
EARLY_STEPS = 10


@dataclass
class LossPoint:
    step: int  # global step (train and validation share one counter)
    value: float


@dataclass
class Evidence:
    loss_name: str | None = None
    train_loss: list[LossPoint] = field(default_factory=list)
    eval_loss: list[LossPoint] = field(default_factory=list)
    # Per global step (first saved steps): variance of each activation input, by tensor name.
    activation_variances: dict[int, dict[str, float]] = field(default_factory=dict)
    # Per global step: (5th, 95th) percentile of all saved gradient values.
    gradient_percentiles: dict[int, tuple[float, float]] = field(default_factory=dict)
    # System metrics: dimension -> name (cpu0, gpu0, MemoryUsedPercent) -> [(time, value)].
    system: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    operators: list[dict[str, Any]] = field(default_factory=list)
    profiled_steps: tuple[int, int] | None = None

    @property
    def has_gpu(self) -> bool:
        return bool(self.system.get("GPUUtilization"))

    def validation_passes(self) -> list[list[LossPoint]]:
        """Validation losses grouped by pass: a pass is a run of consecutive global steps."""
        passes: list[list[LossPoint]] = []
        train_steps = sorted(p.step for p in self.train_loss)
        for point in sorted(self.eval_loss, key=lambda p: p.step):
            if passes and not _train_step_between(train_steps, passes[-1][-1].step,
                                                  point.step):
                passes[-1].append(point)
            else:
                passes.append([point])
        return passes


def _train_step_between(train_steps: list[int], low: int, high: int) -> bool:
    index = int(np.searchsorted(train_steps, low, side="right"))
    return index < len(train_steps) and train_steps[index] < high


def read_tensors(tensors_dir: Path, evidence: Evidence) -> None:
    from smdebug import modes
    from smdebug.trials import create_trial

    trial = create_trial(str(tensors_dir))
    names = sorted(trial.tensor_names(collection="losses"))
    if names:
        # One loss per job: the criterion's output (CrossEntropyLoss_output_0 and the like).
        name = next((n for n in names if n.endswith("_output_0")), names[0])
        evidence.loss_name = name
        tensor = trial.tensor(name)
        for mode, target in ((modes.TRAIN, evidence.train_loss),
                             (modes.EVAL, evidence.eval_loss)):
            for mode_step in tensor.steps(mode=mode):
                target.append(LossPoint(trial.global_step(mode, mode_step),
                                        float(np.mean(tensor.value(mode_step, mode=mode)))))
    activations = trial.tensor_names(regex=ACTIVATION_INPUTS_REGEX)
    for name in activations:
        tensor = trial.tensor(name)
        for mode_step in tensor.steps(mode=modes.TRAIN)[:EARLY_STEPS]:
            step = trial.global_step(modes.TRAIN, mode_step)
            value = tensor.value(mode_step, mode=modes.TRAIN)
            evidence.activation_variances.setdefault(step, {})[name] = float(np.var(value))
    gradients = (trial.tensor_names(collection="gradients")
                 if "gradients" in trial.collections() else [])
    by_step: dict[int, list[np.ndarray]] = defaultdict(list)
    for name in gradients:
        tensor = trial.tensor(name)
        for mode_step in tensor.steps(mode=modes.TRAIN)[:EARLY_STEPS]:
            step = trial.global_step(modes.TRAIN, mode_step)
            by_step[step].append(np.ravel(tensor.value(mode_step, mode=modes.TRAIN)))
    for step, values in by_step.items():
        flat = np.concatenate(values)
        p5, p95 = np.percentile(flat, [5, 95])
        evidence.gradient_percentiles[step] = (float(p5), float(p95))


def read_system_metrics(profiler_dir: Path, evidence: Evidence) -> None:
    series: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list))
    for path in sorted((profiler_dir / SYSTEM_DIR).glob("*/*.json")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                event = json.loads(line)
                series[event["Dimension"]][event.get("Name") or event["Dimension"]].append(
                    (float(event["Timestamp"]), float(event["Value"])))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                # A job killed mid-write leaves a torn last line; SageMaker skips it too.
                log.warning("skipping unreadable system metric %s:%d", path, number)
    evidence.system = {dim: {name: sorted(points) for name, points in names.items()}
                       for dim, names in series.items()}


def read_operators(profiler_dir: Path, evidence: Evidence) -> None:
    files = sorted((profiler_dir / FRAMEWORK_DIR).glob("operators.*.json"))
    if not files:
        return
    table = json.loads(files[0].read_text())
    evidence.operators = table.get("operators", [])
    evidence.profiled_steps = (int(table["start_step"]), int(table["end_step"]) - 1)


def collect(tensors_dir: Path | None, profiler_dir: Path | None) -> Evidence:
    evidence = Evidence()
    if tensors_dir is not None and tensors_dir.is_dir():
        read_tensors(tensors_dir, evidence)
    if profiler_dir is not None and profiler_dir.is_dir():
        read_system_metrics(profiler_dir, evidence)
        read_operators(profiler_dir, evidence)
    return evidence
