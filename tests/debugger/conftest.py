"""Debugger/Profiler configs as the SageMaker Python SDK writes them, and small recorded runs.

``sdk_configs`` builds the seed notebook's ``DebuggerHookConfig``, rules and
``ProfilerConfig`` through ``launch.debugger`` and the real SDK's ``Estimator``, and returns
what SageMaker writes into the container (``debughookconfig.json`` with ``LocalPath`` added,
``profilerconfig.json``). ``record_run`` trains a small model in-process under the real smdebug
hook (``train.debugger.hook.create_hook``) and reads the evidence back with smdebug's trials.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import torch
from torch import nn

from train.contract import TrainingEnv
from train.debugger import evidence as evidence_module
from train.debugger.hook import create_hook

# What SageMaker adds to the request's DebugHookConfig when it writes the container's file.
CONTAINER_TENSORS_PATH = "/opt/ml/output/tensors"


def sdk_configs(train_interval: int = 100, eval_interval: int = 10, *, debugger: bool = True,
                profiler: bool = True) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(debughookconfig, profilerconfig) of a CreateTrainingJob request the SDK would send."""
    os.environ.setdefault("SAGEMAKER_TELEMETRY_OPT_OUT", "true")
    from sagemaker.estimator import Estimator, _TrainingJob

    from launch.debugger import estimator_kwargs

    args = argparse.Namespace(debugger=debugger, profiler=profiler,
                              train_save_interval=train_interval,
                              eval_save_interval=eval_interval)
    session = mock.MagicMock()
    session.boto_region_name = "us-west-2"
    session.default_bucket.return_value = "bucket"
    session.default_bucket_prefix = None
    session.sagemaker_config = None
    session.local_mode = False
    estimator = Estimator(
        image_uri="123456789012.dkr.ecr.us-west-2.amazonaws.com/sm-vision-train:latest",
        role="arn:aws:iam::123456789012:role/SageMakerRole", instance_count=1,
        instance_type="ml.g4dn.xlarge", sagemaker_session=session, output_path="s3://bucket/out",
        **estimator_kwargs(args))
    estimator._prepare_for_training(job_name="seed-job")
    request = _TrainingJob._get_train_args(estimator, "s3://bucket/data", None)
    hook = request.get("debugger_hook_config")
    if hook is not None:
        hook = {"LocalPath": CONTAINER_TENSORS_PATH, **hook}
    return hook, request.get("profiler_config")


def write_configs(base: Path, hook: dict[str, Any] | None = None,
                  profiler: dict[str, Any] | None = None) -> None:
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    if hook is not None:
        (config / "debughookconfig.json").write_text(json.dumps(hook))
    if profiler is not None:
        (config / "profilerconfig.json").write_text(json.dumps(profiler))


# Everything the rules read, every step: fine for the small models of record_run.
RULE_EVIDENCE_CONFIG: dict[str, Any] = {
    "LocalPath": CONTAINER_TENSORS_PATH,
    "HookParameters": {"save_interval": "1"},
    "CollectionConfigurations": [
        {"CollectionName": "CrossEntropyLoss_output_0",
         "CollectionParameters": {"include_regex": "CrossEntropyLoss_output_0"}},
        {"CollectionName": "losses"},
        {"CollectionName": "relu_input", "CollectionParameters": {"include_regex": ".*relu_input"}},
        {"CollectionName": "gradients"},
    ],
}

Batch = tuple[torch.Tensor, torch.Tensor]


class Block(nn.Module):
    """Linear + ReLU; the ReLU is named ``relu`` so its input matches ``.*relu_input``."""

    def __init__(self, width_in: int, width_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width_in, width_out)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.linear(x))


def mlp(init: str, features: int = 64, width: int = 64, classes: int = 10) -> nn.Module:
    """``init``: ``kaiming`` (variance-preserving for ReLU) or ``zeros`` (every weight 0)."""
    torch.manual_seed(0)
    model = nn.Sequential(Block(features, width), Block(width, width), Block(width, width),
                          nn.Linear(width, classes))
    for module in model.modules():
        if isinstance(module, nn.Linear):
            if init == "zeros":
                nn.init.zeros_(module.weight)
            else:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return model


def record_run(base: Path, model: nn.Module, train_batch: Callable[[int], Batch],
               validation: list[Batch], *, steps: int, eval_every: int, lr: float,
               config: dict[str, Any] | None = None) -> evidence_module.Evidence:
    """Train ``model`` for ``steps`` SGD steps with the hook in TRAIN mode, a validation pass
    (EVAL) every ``eval_every`` steps, then read the saved tensors back."""
    write_configs(base, hook=config or RULE_EVIDENCE_CONFIG)
    env = TrainingEnv(base_dir=base)
    criterion = nn.CrossEntropyLoss()
    hook = create_hook(env, model, criterion)
    assert hook is not None
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(steps):
        hook.train_mode()
        model.train()
        x, y = train_batch(step)
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % eval_every == 0:
            hook.eval_mode()
            model.eval()
            with torch.no_grad():
                for x, y in validation:
                    criterion(model(x), y)
    hook.close()
    return evidence_module.collect(base / "output" / "tensors", None)


@pytest.fixture(scope="session")
def digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 8x8 digits, standardised, as (features, labels)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return x, torch.tensor(digits.target)


def pytest_configure(config: pytest.Config) -> None:
    # smdebug 1.0.34's generated protobuf code and tostring() calls warn on every tensor.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:smdebug.*")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:google.protobuf.*")
