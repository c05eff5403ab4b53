"""Training checkpoints in ``/opt/ml/checkpoints`` (synced to S3 by SageMaker).

One file, ``last.pt``, the same layout for every task (written by ``train.engine``): model,
optimizer, scheduler and gradient-scaler state, the position in the epoch, the training
meter's sums, the best epoch's weights and metrics, RNG state, the early-stopping record and the
task's own progress. Written to a temp file, fsynced and renamed,
so a crash or SIGTERM mid-write leaves the previous checkpoint intact. Loaded with
``weights_only=True``: tensors and plain containers only, never arbitrary objects.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import torch

from common.artifact import atomic_open
from train.errors import TrainingInterrupted, UserError

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "last.pt"
FORMAT = "sm-vision-checkpoint-v2"
OLDER_FORMATS = ("sm-vision-checkpoint-v1",)


def save(directory: Path, state: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILE
    with atomic_open(path) as fh:
        torch.save({"format": FORMAT, **state}, fh)
    return path


def load(directory: Path) -> dict[str, Any] | None:
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own message for a foreign pickle advises weights_only=False: never here.
        why = ("not a checkpoint of this toolkit, or cut short: it holds more than tensors "
               "and plain data, which is never unpickled" if isinstance(exc, pickle.UnpicklingError)
               else str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise UserError(
            f"checkpoint {path} cannot be read ({why}); delete it (or point checkpoint_s3_uri "
            "elsewhere) to start from scratch"
        ) from exc
    if isinstance(state, dict) and state.get("format") in OLDER_FORMATS:
        raise UserError(
            f"{path} was written by an earlier version of this image, whose checkpoints this "
            "version cannot continue; delete it (or use another checkpoint location) to start "
            "over, or finish the job with the image that started it"
        )
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a checkpoint written by this toolkit; delete it or use another "
            "checkpoint location"
        )
    return state


def check_compatible(state: dict[str, Any], fingerprint: dict[str, Any], path: Path) -> None:
    """Refuse to resume a checkpoint that belongs to a differently configured job."""
    saved = state.get("fingerprint", {})
    diffs = [f"{k}: {saved.get(k)!r} → {v!r}" for k, v in fingerprint.items() if saved.get(k) != v]
    if diffs:
        raise UserError(
            f"checkpoint in {path} was written by a job with different settings "
            f"({'; '.join(diffs)}); delete it or use a new checkpoint location to start over"
        )


def interruption(directory: Path, epoch: int, where: str = "") -> TrainingInterrupted:
    """The error a job raises once its checkpoint is saved after SIGTERM; ``where`` says whose
    checkpoint directory it is in a distributed job."""
    return TrainingInterrupted(
        f"training stopped by SIGTERM at epoch {epoch}; checkpoint saved to {directory}{where}. "
        "Run the job again with the same checkpoint location to resume."
    )
