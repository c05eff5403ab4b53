"""A classification job run with the seed's Debugger and Profiler configs, as SageMaker writes
them, then read back with smdebug's trial API and reported on with ``python -m
train.debugger report``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import FAST_HYPERPARAMETERS, REPO, make_opt_ml, run_train
from tests.debugger.conftest import sdk_configs, write_configs
from tests.debugger.test_report import decoded_images

# The seed's config at intervals a 2-epoch CPU job reaches (12 steps an epoch, 3 EVAL steps
# a validation pass), plus the weights/gradients/biases collections the way a user adds them.
TRAIN_INTERVAL, EVAL_INTERVAL = 5, 2
EXTRA_COLLECTIONS = [{"CollectionName": name} for name in ("weights", "gradients", "biases")]


@pytest.fixture(scope="module")
def job(digits_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    hook, profiler = sdk_configs(TRAIN_INTERVAL, EVAL_INTERVAL)
    hook["CollectionConfigurations"] += EXTRA_COLLECTIONS
    base = make_opt_ml(tmp_path_factory.mktemp("debugged"),
                       FAST_HYPERPARAMETERS | {"epochs": "2"},
                       {"train": digits_small / "train",
                        "validation": digits_small / "validation"})
    write_configs(base, hook=hook, profiler=profiler)
    result = run_train(base, timeout=600)
    assert result.returncode == 0, result.log[-3000:]
    assert "debugger: hook from" in result.log
    assert "profiler: system metrics every 500 ms" in result.log
    # Kineto's stderr chatter (and its GPU query "ERROR" on CPU hosts) is silenced.
    assert "USDT:" not in result.log and "gpuGetDeviceCount" not in result.log
    return base


@pytest.fixture(scope="module")
def trial(job: Path):
    from smdebug.trials import create_trial

    return create_trial(str(job / "output" / "tensors"))


def test_steps_are_saved_in_train_and_eval_modes(trial) -> None:
    from smdebug import modes

    loss = trial.tensor("CrossEntropyLoss_output_0")
    train_steps = loss.steps(mode=modes.TRAIN)
    eval_steps = loss.steps(mode=modes.EVAL)
    # 120 images / 16 = 8 batches an epoch, two epochs: TRAIN steps 0..15 every 5.
    assert train_steps == [0, 5, 10, 15]
    # 40 validation images / 16 = 3 batches a pass, two passes: EVAL steps 0..5 every 2.
    assert eval_steps == [0, 2, 4]
    for step in train_steps:
        value = loss.value(step, mode=modes.TRAIN)
        assert value.shape == () and np.isfinite(value) and value > 0


def test_the_seed_collections_and_the_named_defaults_are_saved(trial) -> None:
    from smdebug import modes

    collections = set(trial.collections())
    assert {"CrossEntropyLoss_output_0", "losses", "relu_input", "weights", "gradients",
            "biases"} <= collections
    assert trial.tensor_names(collection="CrossEntropyLoss_output_0") == [
        "CrossEntropyLoss_output_0"]
    weights = trial.tensor_names(collection="weights")
    assert "conv1.weight" in weights or any(n.endswith("conv1.weight") for n in weights)
    gradients = trial.tensor_names(collection="gradients")
    assert any(name.startswith("gradient/") for name in gradients)
    # At the hook's configured interval, like the loss.
    assert trial.tensor(weights[0]).steps(mode=modes.TRAIN) == [0, 5, 10, 15]


def test_relu_input_is_the_input_not_the_output(trial) -> None:
    from smdebug import modes

    names = trial.tensor_names(regex=".*relu_input")
    assert names
    values = np.concatenate([np.ravel(trial.tensor(n).value(0, mode=modes.TRAIN))
                             for n in names])
    # torchvision's ResNet uses ReLU(inplace=True): read after the forward pass, the "input"
    # would be the output, never negative.
    assert values.min() < 0


def test_the_checkpoint_carries_the_hook_step_counters(job: Path) -> None:
    state = torch.load(job / "checkpoints" / "last.pt", weights_only=False)
    assert state["debugger"]["step"] > 16
    assert state["debugger"]["mode_steps"]["TRAIN"] == 15  # the last TRAIN step (0-based)


def test_profiler_output_layout(job: Path) -> None:
    profiler = job / "output" / "profiler"
    files = sorted((profiler / "system" / "incremental").glob("*/*.algo-1.json"))
    assert files
    assert re.fullmatch(r"\d{10}", files[0].parent.name)  # YYYYMMDDHH
    events = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    dimensions = {e["Dimension"] for e in events}
    assert {"CPUUtilization", "Memory"} <= dimensions, dimensions
    assert all(set(e) == {"Type", "Name", "Dimension", "Value", "NodeId", "Timestamp"}
               for e in events)
    assert (profiler / "system" / "training_job_end.ts").exists()
    trace = json.loads((profiler / "framework" / "pytorch" / "trace.algo-1.json").read_text())
    assert trace["traceEvents"]
    operators = json.loads(
        (profiler / "framework" / "pytorch" / "operators.algo-1.json").read_text())
    assert (operators["start_step"], operators["end_step"]) == (0, 10)
    assert any("conv" in op["name"] for op in operators["operators"])


def _report(base: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "train.debugger", "report", "--base-dir",
                           str(base), *extra], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_the_report_command_on_the_job(job: Path) -> None:
    result = _report(job)
    assert result.returncode == 0, result.stderr[-2000:]
    html_path = job / "output" / "debug-report" / "report.html"
    assert f"debug report: {html_path}" in result.stdout
    summary = next(line for line in result.stdout.splitlines() if line.startswith("rules: "))
    for rule in ("LossNotDecreasing", "Overfit", "Overtraining", "PoorWeightInitialization"):
        assert rule in summary
    assert "LowGPUUtilization: NotApplicable" in summary
    verdicts = {v["rule"]: v for v in json.loads(
        (job / "output" / "debug-report" / "verdicts.json").read_text())}
    assert verdicts["LowGPUUtilization"]["message"].startswith("no GPU")
    assert verdicts["PoorWeightInitialization"]["status"] in ("NoIssuesFound", "IssuesFound")
    images = decoded_images(html_path.read_text())
    assert len(images) == 3  # loss, system utilisation, top operators


def test_fail_on_issues_exits_3_when_a_rule_fires(job: Path, tmp_path: Path) -> None:
    forced = _report(job, "--out-dir", str(tmp_path), "--fail-on-issues",
                     "--rule-parameter", "Overfit.ratio_threshold=-100")
    assert forced.returncode == 3, forced.stdout + forced.stderr
    assert "Overfit: IssuesFound" in forced.stdout
    relaxed = _report(job, "--out-dir", str(tmp_path), "--fail-on-issues",
                      *(f"--rule-parameter={p}" for p in (
                          "Overfit.ratio_threshold=1000", "LossNotDecreasing.diff_percent=-1000",
                          "Overtraining.delta=-1000", "PoorWeightInitialization.threshold=1e30",
                          "PoorWeightInitialization.distribution_range=0",
                          "PoorWeightInitialization.patience=1000")))
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr


def test_report_errors_name_the_problem(tmp_path: Path, job: Path) -> None:
    nothing = _report(tmp_path)
    assert nothing.returncode == 1
    assert "debughookconfig.json" in nothing.stderr and "--tensors" in nothing.stderr
    bad = _report(job, "--out-dir", str(tmp_path), "--rule-parameter", "Overfit=1")
    assert bad.returncode == 1 and "RULE.NAME=VALUE" in bad.stderr
    unknown = _report(job, "--out-dir", str(tmp_path), "--rule-parameter", "Nope.x=1")
    assert unknown.returncode == 1 and "unknown rule" in unknown.stderr
    typo = _report(job, "--out-dir", str(tmp_path), "--rule-parameter", "Overfit.patiense=1")
    assert typo.returncode == 1 and "patiense" in typo.stderr
