"""SIGTERM: SageMaker's stop signal (StopTrainingJob, spot interruption, MaxRuntime).

``install`` puts the handler in place as the very first thing the ``train`` command does, before
any slow import, so that a signal that arrives while torch is still loading is never fatal. The
handler only sets a flag: the job polls it between batches (then saves a checkpoint) and at the
steps before training starts (then there is nothing to save).
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

from train.errors import TrainingInterrupted

log = logging.getLogger(__name__)


class StopRequest:
    """Set by the SIGTERM handler; polled between batches and before training starts."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def check(self, step: str) -> None:
        """Before training has started there is no progress to save: stop at once."""
        if self.requested:
            raise TrainingInterrupted(
                f"training stopped by SIGTERM {step}, before any training step; nothing to "
                "checkpoint. Run the job again to start it."
            )

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.requested:
            log.warning("SIGTERM received: stopping (a checkpoint is saved after the current "
                        "batch once training runs)")
        self.requested = True


def check_before_training(stop: object, step: str) -> None:
    """``stop.check`` for the command's StopRequest; a plain callable (tests) has none."""
    if isinstance(stop, StopRequest):
        stop.check(step)


def install() -> StopRequest:
    stop = StopRequest()
    signal.signal(signal.SIGTERM, stop.on_signal)
    return stop
