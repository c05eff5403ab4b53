"""SageMaker Debugger's tensor hook (smdebug) for a training job.

The AWS framework containers create this hook inside PyTorch; a custom image has to do it
itself. Created only when SageMaker wrote ``debughookconfig.json`` (or
``$SMDEBUG_CONFIG_FILE_PATH`` points at one): without it nothing is imported and nothing runs.

Modes: TRAIN while training, EVAL for the per-epoch validation pass (the rules compare the
two curves) and PREDICT for the evaluation after training, so that it does not extend the
validation curve. smdebug counts a step per forward pass of the registered model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from torch import nn

from train.contract import TrainingEnv
from train.debugger.config import HookConfig, load_hook_config

log = logging.getLogger(__name__)

# smdebug.pytorch reads this at import time and, when a profiler config exists, runs its own
# (torch 1.x-era) framework profiler inside the hook. sm-vision profiles with torch.profiler
# (train.debugger.profiler), so smdebug's is pointed at a file that does not exist.
SMDEBUG_PROFILER_CONFIG_ENV = "SMPROFILER_CONFIG_PATH"
SMDEBUG_PROFILER_OFF = "/nonexistent/sm-vision-profiles-with-torch.profiler"
SMDEBUG_LOG_LEVEL_ENV = "SMDEBUG_LOG_LEVEL"


class DebugHook:
    """An smdebug ``Hook`` with the model and loss registered."""

    def __init__(self, hook: Any, config: HookConfig) -> None:
        self._hook = hook
        self.config = config

    def train_mode(self) -> None:
        self._set_mode("TRAIN")

    def eval_mode(self) -> None:
        self._set_mode("EVAL")

    def predict_mode(self) -> None:
        self._set_mode("PREDICT")

    def _set_mode(self, name: str) -> None:
        from smdebug import modes

        self._hook.set_mode(getattr(modes, name))

    def state(self) -> dict[str, Any]:
        """Step counters, saved in the training checkpoint so a resumed job continues them."""
        return {"step": int(self._hook.step),
                "mode_steps": {mode.name: int(n) for mode, n in self._hook.mode_steps.items()}}

    def restore(self, state: dict[str, Any] | None) -> None:
        if not state:
            return
        from smdebug.core.modes import ModeKeys

        self._hook.step = state["step"]
        for name, steps in state["mode_steps"].items():
            self._hook.mode_steps[ModeKeys[name]] = steps
        log.info("debugger: continuing at step %d", self._hook.step)

    def close(self) -> None:
        self._hook.close()


def create_hook(env: TrainingEnv, model: nn.Module, criterion: nn.Module,
                resuming: bool = False) -> DebugHook | None:
    """The hook, or None without a config. ``resuming``: the job continues from a checkpoint,
    so it adds to the tensors already saved instead of starting a new set."""
    config = load_hook_config(env)
    if config is None:
        return None
    os.environ[SMDEBUG_PROFILER_CONFIG_ENV] = SMDEBUG_PROFILER_OFF
    os.environ.setdefault(SMDEBUG_LOG_LEVEL_ENV, "warning")  # not a line per parameter
    import smdebug.pytorch as smd

    _prepare_out_dir(config.out_dir, resuming)
    # smdebug reads the config from a file; hand it the copy whose LocalPath is resolved.
    with tempfile.TemporaryDirectory() as tmp:
        resolved = Path(tmp) / "debughookconfig.json"
        resolved.write_text(json.dumps(config.raw))
        hook = smd.Hook.create_from_json_file(str(resolved))
    if _saves_relu_inputs(config):
        _disable_inplace_relu(model)
    hook.register_module(model)
    hook.register_loss(criterion)
    log.info("debugger: hook from %s saving %s to %s", config.source,
             ", ".join(config.collection_names()) or "the default collections", config.out_dir)
    return DebugHook(hook, config)


def _prepare_out_dir(out_dir: Path, resuming: bool) -> None:
    """smdebug refuses a folder holding a finished job (``training_job_end.ts``), and lets
    only the process holding ``claim.smd`` write (removed on a clean close).

    Resuming, the job continues its own tensors: the end marker written when it stopped
    and a claim left by a kill are its own. A new job in a tree holding earlier tensors
    (a local re-run) moves them aside rather than mixing two jobs' steps or deleting them.
    """
    from smdebug.core.access_layer.utils import END_OF_JOB_FILENAME
    from smdebug.core.config_constants import CLAIM_FILENAME

    if out_dir.is_dir() and any(out_dir.iterdir()) and not resuming:
        stamp = datetime.fromtimestamp(out_dir.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
        kept = out_dir.with_name(f"{out_dir.name}.previous-{stamp}")
        out_dir.rename(kept)
        log.warning("debugger: %s held an earlier job's tensors; moved them to %s", out_dir,
                    kept)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (END_OF_JOB_FILENAME, CLAIM_FILENAME):
        (out_dir / name).unlink(missing_ok=True)


def _saves_relu_inputs(config: HookConfig) -> bool:
    patterns = [c.get("CollectionParameters", {}).get("include_regex", "")
                for c in config.raw.get("CollectionConfigurations") or []]
    return "relu_input" in config.collection_names() or any(
        _matches(pattern, "layer1.0.relu_input_0") for pattern in patterns if pattern)


def _matches(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:  # smdebug reports a bad include_regex itself
        return False


def _disable_inplace_relu(model: nn.Module) -> None:
    """smdebug reads a module's inputs after its forward pass, when ``ReLU(inplace=True)``
    (torchvision's ResNet) has already overwritten them with the outputs: the saved
    ``relu_input`` would be non-negative and the PoorWeightInitialization rule would read
    post-activation variances. Out-of-place ReLU computes the same values; it costs one
    activation-sized buffer per ReLU."""
    changed = 0
    for module in model.modules():
        if isinstance(module, nn.ReLU) and module.inplace:
            module.inplace = False
            changed += 1
    if changed:
        log.info("debugger: %d in-place ReLUs made out-of-place so relu_input is the input",
                 changed)
