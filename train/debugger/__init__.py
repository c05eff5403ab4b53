"""SageMaker Debugger and Profiler for sm-vision training jobs.

``Instruments.create`` looks for ``debughookconfig.json`` and ``profilerconfig.json``; the
training loop calls the same few methods whether or not either exists (each is a no-op then),
so a job without them imports neither smdebug nor the profiler.
Local rule evaluation and the HTML report: ``python -m train.debugger report``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from train.contract import TrainingEnv
from train.debugger.config import load_profiler_settings

if TYPE_CHECKING:
    from train.debugger.hook import DebugHook
    from train.debugger.profiler import Profiler

log = logging.getLogger(__name__)


@dataclass
class Instruments:
    hook: DebugHook | None = None
    profiler: Profiler | None = None

    @classmethod
    def create(cls, env: TrainingEnv, model: nn.Module, criterion: nn.Module, cuda: bool,
               resuming: bool = False) -> Instruments:
        """``resuming``: the job continues from a checkpoint (its tensors are added to)."""
        from train.debugger.hook import create_hook

        instruments = cls(hook=create_hook(env, model, criterion, resuming))
        settings = load_profiler_settings(env)
        if settings is not None:
            from train.debugger.profiler import Profiler

            instruments.profiler = Profiler(settings, env.resources.current_host, cuda)
            instruments.profiler.start()
        return instruments

    def train_mode(self) -> None:
        if self.hook is not None:
            self.hook.train_mode()

    def eval_mode(self) -> None:
        if self.hook is not None:
            self.hook.eval_mode()

    def predict_mode(self) -> None:
        if self.hook is not None:
            self.hook.predict_mode()

    def after_step(self) -> None:
        if self.profiler is not None:
            self.profiler.after_step()

    def state(self) -> dict[str, Any] | None:
        return self.hook.state() if self.hook is not None else None

    def restore(self, state: dict[str, Any] | None) -> None:
        if self.hook is not None:
            self.hook.restore(state)

    def close(self) -> None:
        if self.profiler is not None:
            self.profiler.close()
        if self.hook is not None:
            self.hook.close()

    def __enter__(self) -> Instruments:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
