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
import tempfile
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


def create_hook(env: TrainingEnv, model: nn.Module, criterion: nn.Module) -> DebugHook | None:
    config = load_hook_config(env)
    if config is None:
        return None
    os.environ[SMDEBUG_PROFILER_CONFIG_ENV] = SMDEBUG_PROFILER_OFF
    import smdebug.pytorch as smd

    config.out_dir.mkdir(parents=True, exist_ok=True)
    # smdebug reads the config from a file; hand it the copy whose LocalPath is resolved.
    with tempfile.TemporaryDirectory() as tmp:
        resolved = Path(tmp) / "debughookconfig.json"
        resolved.write_text(json.dumps(config.raw))
        hook = smd.Hook.create_from_json_file(str(resolved))
    hook.register_module(model)
    hook.register_loss(criterion)
    log.info("debugger: hook from %s saving %s to %s", config.source,
             ", ".join(config.collection_names()) or "the default collections", config.out_dir)
    return DebugHook(hook, config)
