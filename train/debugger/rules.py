"""SageMaker Debugger's built-in rules, evaluated locally on a finished job's ``Evidence``.

Parameter names and defaults are those of SageMaker's "List of Debugger built-in rules".
The rule implementations themselves are closed source; what each rule checks is written in
its docstring (and the README) as this project implements the documented behaviour.

Statuses are SageMaker's (``IssuesFound``, ``NoIssuesFound``) plus two of our own:
``NotApplicable`` (e.g. LowGPUUtilization on a job without a GPU: not a failure) and
``InsufficientData`` (the job did not save what the rule reads; the message says what to add).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from train.debugger.evidence import Evidence, LossPoint

ISSUES_FOUND = "IssuesFound"
NO_ISSUES_FOUND = "NoIssuesFound"
NOT_APPLICABLE = "NotApplicable"
INSUFFICIENT_DATA = "InsufficientData"


@dataclass
class Verdict:
    rule: str
    status: str
    message: str
    parameters: dict[str, Any]
    fired_at: list[float] = field(default_factory=list)  # steps (or unix times) it fired
    unit: str = "step"

    @property
    def first(self) -> float | None:
        return self.fired_at[0] if self.fired_at else None

    def summary(self) -> str:
        if self.status == ISSUES_FOUND:
            where = (f" at {self.unit} {self.first:g}" if self.unit == "step" else "")
            return f"{self.rule}: {ISSUES_FOUND}{where}"
        return f"{self.rule}: {self.status}"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "status": self.status, "message": self.message,
                "first": self.first, "fired_at": self.fired_at, "unit": self.unit,
                "parameters": self.parameters}


def loss_not_decreasing(evidence: Evidence, num_steps: int = 10, diff_percent: float = 0.1,
                        increase_threshold_percent: float = 5.0,
                        mode: str = "TRAIN") -> Verdict:
    """Every ``num_steps`` steps, the loss must have fallen by at least ``diff_percent`` % since
    the previous check; a rise above ``increase_threshold_percent`` % is reported as such.

    Checks the TRAIN curve by default (SageMaker's page lists GLOBAL): within one validation
    pass the per-batch losses are different batches, not a sequence; ``mode=EVAL`` checks the
    mean loss of each validation pass instead.
    """
    params = {"num_steps": num_steps, "diff_percent": diff_percent,
              "increase_threshold_percent": increase_threshold_percent, "mode": mode}
    curve = _curve(evidence, mode)
    if len(curve) < 2:
        return Verdict("LossNotDecreasing", INSUFFICIENT_DATA, _need_losses(evidence, mode),
                       params)
    fired: list[float] = []
    notes: list[str] = []
    reference = curve[0]
    checks = 0
    for point in curve[1:]:
        if point.step - reference.step < num_steps:
            continue
        checks += 1
        change = 100.0 * (reference.value - point.value) / max(abs(reference.value), 1e-12)
        if change < diff_percent:
            fired.append(point.step)
            kind = (f"rose {-change:.1f}% (more than {increase_threshold_percent}%)"
                    if -change > increase_threshold_percent else f"fell only {change:.2f}%")
            notes.append(f"step {reference.step}->{point.step}: {kind}")
        reference = point
    if fired:
        return Verdict("LossNotDecreasing", ISSUES_FOUND,
                       f"the {mode} loss did not decrease by {diff_percent}% at {len(fired)} of "
                       f"{checks} checks; first {notes[0]}", params, fired)
    if checks == 0:
        return Verdict("LossNotDecreasing", INSUFFICIENT_DATA,
                       f"the {mode} loss spans fewer than num_steps={num_steps} steps",
                       params)
    return Verdict("LossNotDecreasing", NO_ISSUES_FOUND,
                   f"the {mode} loss decreased at all {checks} checks", params)


def overfit(evidence: Evidence, start_step: int = 0, patience: int = 1,
            ratio_threshold: float = 0.1) -> Verdict:
    """After each validation pass: (mean validation loss - mean training loss since the
    previous pass) / mean training loss. Fires once that ratio exceeds ``ratio_threshold`` for
    ``patience`` consecutive passes from ``start_step`` on."""
    params = {"start_step": start_step, "patience": patience,
              "ratio_threshold": ratio_threshold}
    pairs = _train_validation_pairs(evidence, start_step)
    if not pairs:
        return Verdict("Overfit", INSUFFICIENT_DATA,
                       "needs the loss saved in both TRAIN and EVAL modes (a validation "
                       "channel and eval.save_interval)", params)
    fired, run, worst = [], 0, -np.inf
    for step, train_mean, val_mean in pairs:
        ratio = (val_mean - train_mean) / max(abs(train_mean), 1e-12)
        worst = max(worst, ratio)
        run = run + 1 if ratio > ratio_threshold else 0
        if run >= patience:
            fired.append(step)
    if fired:
        return Verdict("Overfit", ISSUES_FOUND,
                       f"validation loss exceeded training loss by more than "
                       f"{ratio_threshold:.0%} for {patience} pass(es) (worst ratio "
                       f"{worst:.2f})", params, fired)
    return Verdict("Overfit", NO_ISSUES_FOUND,
                   f"validation/training loss gap stayed within {ratio_threshold:.0%} "
                   f"(worst {worst:.2f}) over {len(pairs)} validation passes", params)


def overtraining(evidence: Evidence, patience_train: int = 5, patience_validation: int = 10,
                 delta: float = 0.01) -> Verdict:
    """Fires when the training loss has not improved on its best by more than ``delta`` for
    ``patience_train`` saved steps, or the validation loss (mean of a pass) for
    ``patience_validation`` passes."""
    params = {"patience_train": patience_train, "patience_validation": patience_validation,
              "delta": delta}
    train = evidence.train_loss
    validation = _pass_means(evidence)
    if not train:
        return Verdict("Overtraining", INSUFFICIENT_DATA, _need_losses(evidence, "TRAIN"),
                       params)
    fired = []
    for curve, patience, name in ((train, patience_train, "training"),
                                  (validation, patience_validation, "validation")):
        step = _first_stall(curve, patience, delta)
        if step is not None:
            fired.append((step, name, patience))
    if fired:
        fired.sort()
        step, name, patience = fired[0]
        return Verdict("Overtraining", ISSUES_FOUND,
                       f"the {name} loss stopped improving by more than {delta} for "
                       f"{patience} consecutive points", params, [s for s, _, _ in fired])
    return Verdict("Overtraining", NO_ISSUES_FOUND,
                   "training and validation losses kept improving", params)


def poor_weight_initialization(evidence: Evidence,
                               activation_inputs_regex: str = ".*relu_input",
                               threshold: float = 10.0, distribution_range: float = 0.001,
                               patience: int = 5, steps: int = 10) -> Verdict:
    """Over the first ``steps`` training steps (global steps 0..steps-1, whichever of them were
    saved): the ratio of the largest to the smallest variance of the activation inputs across
    layers must stay within ``threshold``; the 5th-95th percentile spread of all gradients
    must exceed ``distribution_range``; and the loss must fall below its first value within
    ``patience`` saved steps."""
    params = {"activation_inputs_regex": activation_inputs_regex, "threshold": threshold,
              "distribution_range": distribution_range, "patience": patience, "steps": steps}
    problems: list[tuple[int, str]] = []
    for step in sorted(s for s in evidence.activation_variances if s < steps):
        variances = np.array(list(evidence.activation_variances[step].values()))
        if len(variances) < 2:
            continue
        low, high = float(variances.min()), float(variances.max())
        ratio = np.inf if low <= 0 else high / low
        if ratio > threshold:
            problems.append((step, f"activation-input variance ratio {ratio:.3g} > "
                                   f"{threshold:g} at step {step}"))
    for step in sorted(s for s in evidence.gradient_percentiles if s < steps):
        p5, p95 = evidence.gradient_percentiles[step]
        if p95 - p5 < distribution_range:
            problems.append((step, f"gradients spread only {p95 - p5:.2e} (5th-95th "
                                   f"percentile) at step {step}"))
    early = evidence.train_loss[:patience + 1]
    if len(early) == patience + 1 and min(p.value for p in early[1:]) >= early[0].value:
        problems.append((early[-1].step, f"the loss did not fall within {patience} saved "
                                         "steps"))
    if not any(s < steps for s in [*evidence.activation_variances,
                                   *evidence.gradient_percentiles]):
        return Verdict("PoorWeightInitialization", INSUFFICIENT_DATA,
                       f"needs the relu_input collection (include_regex .*relu_input) or the "
                       f"gradients collection saved within the first {steps} steps (e.g. "
                       f"save_steps \"0\")", params)
    if problems:
        problems.sort()
        return Verdict("PoorWeightInitialization", ISSUES_FOUND, problems[0][1], params,
                       sorted({float(s) for s, _ in problems}))
    return Verdict("PoorWeightInitialization", NO_ISSUES_FOUND,
                   "activation variances and gradients looked healthy in the first steps",
                   params)


def low_gpu_utilization(evidence: Evidence, threshold_p95: float = 70.0,
                        threshold_p5: float = 10.0, window: int = 500,
                        patience: int = 1000) -> Verdict:
    """Per GPU, once more than ``patience`` samples exist, over the last ``window`` samples:
    fires when the 95th percentile is below ``threshold_p95`` (the GPU is underused), or above
    it while the 5th percentile is below ``threshold_p5`` (it keeps waiting: a fluctuating
    load, e.g. a data-loader bottleneck)."""
    params = {"threshold_p95": threshold_p95, "threshold_p5": threshold_p5, "window": window,
              "patience": patience}
    gpus = evidence.system.get("GPUUtilization", {})
    if not gpus and evidence.system.get("GPUMemoryUtilization"):
        return Verdict("LowGPUUtilization", INSUFFICIENT_DATA,
                       "the job had a GPU but its utilisation was not recorded: the profiler "
                       "reads it through NVML (pip install nvidia-ml-py, in the training image)",
                       params, unit="time")
    if not gpus:
        return Verdict("LowGPUUtilization", NOT_APPLICABLE,
                       "no GPU: the job trained on CPU, so GPU utilisation does not apply",
                       params, unit="time")
    fired: list[float] = []
    notes = []
    for name, points in sorted(gpus.items()):
        values = np.array([v for _, v in points])
        times = [t for t, _ in points]
        for end in range(patience + 1, len(values) + 1, max(1, window // 10)):
            recent = values[max(0, end - window):end]
            p95, p5 = np.quantile(recent, 0.95), np.quantile(recent, 0.05)
            if p95 < threshold_p95 or (p95 > threshold_p95 and p5 < threshold_p5):
                fired.append(times[end - 1])
                notes.append(f"{name}: p95 {p95:.0f}%, p5 {p5:.0f}%")
                break
    samples = min(len(points) for points in gpus.values())
    if fired:
        return Verdict("LowGPUUtilization", ISSUES_FOUND, "; ".join(notes), params,
                       sorted(fired), unit="time")
    if samples <= patience:
        return Verdict("LowGPUUtilization", INSUFFICIENT_DATA,
                       f"{samples} GPU samples; the rule needs more than patience={patience} "
                       "(about 8 minutes at 500 ms)", params, unit="time")
    return Verdict("LowGPUUtilization", NO_ISSUES_FOUND,
                   "GPU utilisation stayed high", params, unit="time")


RULES: dict[str, Callable[..., Verdict]] = {
    "LossNotDecreasing": loss_not_decreasing,
    "Overfit": overfit,
    "Overtraining": overtraining,
    "PoorWeightInitialization": poor_weight_initialization,
    "LowGPUUtilization": low_gpu_utilization,
}


def evaluate_all(evidence: Evidence,
                 overrides: dict[str, dict[str, Any]] | None = None) -> list[Verdict]:
    overrides = overrides or {}
    unknown = set(overrides) - set(RULES)
    if unknown:
        raise ValueError(f"unknown rule(s) {sorted(unknown)}; choose from {sorted(RULES)}")
    return [rule(evidence, **overrides.get(name, {})) for name, rule in RULES.items()]


def _curve(evidence: Evidence, mode: str) -> list[LossPoint]:
    if mode.upper() == "EVAL":
        return _pass_means(evidence)
    if mode.upper() in ("TRAIN", "GLOBAL"):
        return sorted(evidence.train_loss, key=lambda p: p.step)
    raise ValueError(f"mode must be TRAIN, EVAL or GLOBAL, not {mode!r}")


def _pass_means(evidence: Evidence) -> list[LossPoint]:
    return [LossPoint(p[0].step, float(np.mean([q.value for q in p])))
            for p in evidence.validation_passes()]


def _train_validation_pairs(evidence: Evidence,
                            start_step: int) -> list[tuple[int, float, float]]:
    pairs = []
    previous = -1
    train = sorted(evidence.train_loss, key=lambda p: p.step)
    for validation in evidence.validation_passes():
        step = validation[0].step
        segment = [p.value for p in train if previous < p.step < step]
        previous = validation[-1].step
        if segment and step >= start_step:
            pairs.append((step, float(np.mean(segment)),
                          float(np.mean([p.value for p in validation]))))
    return pairs


def _first_stall(curve: list[LossPoint], patience: int, delta: float) -> int | None:
    best, since = np.inf, 0
    for point in curve:
        if point.value < best - delta:
            best, since = point.value, 0
        else:
            since += 1
            if since >= patience:
                return point.step
    return None


def _need_losses(evidence: Evidence, mode: str) -> str:
    if evidence.loss_name is None:
        return "no loss tensors were saved: add the losses collection to the hook config"
    return f"too few {mode} points of {evidence.loss_name}; lower {mode.lower()}.save_interval"
