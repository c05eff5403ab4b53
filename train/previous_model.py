"""Incremental training: start from a previous job's model (the built-ins' ``model`` channel).

SageMaker's built-in image-classification and semantic-segmentation algorithms take a channel
named ``model`` (ContentType ``application/x-sagemaker-model``) holding an earlier job's
``model.tar.gz``; training starts from its weights. This image takes its own artifacts the same
way: the tarball, or its extracted ``model.safetensors`` and ``metadata.json``. The archive is
untrusted input and is read by ``train.safe_tar`` (checked member by member, read into memory,
never extracted to disk); weights are safetensors and metadata JSON, so nothing is unpickled.

The settings that define the network must match the previous model's (the task checks them
with ``require_same``); a job that resumes from a checkpoint ignores the channel.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.artifact import METADATA_FILE, WEIGHTS_FILE, ArtifactError, Metadata
from train.contract import INPUT_MODE_PIPE, MODEL_CHANNEL, TrainingEnv
from train.errors import UserError
from train.safe_tar import GIB, read_files

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
# A ResNet-152 artifact is ~240 MB; the cap only stops archives that unpack without end.
MAX_BYTES_ENV = "SM_VISION_MAX_MODEL_BYTES"
DEFAULT_MAX_BYTES = 4 * GIB
WHAT = f"the {MODEL_CHANNEL!r} channel's archive"


@dataclass(frozen=True)
class PreviousModel:
    metadata: Metadata
    state_dict: dict[str, Any]
    source: Path


def load(env: TrainingEnv) -> PreviousModel | None:
    """The ``model`` channel's artifact, or None when the job has no such channel."""
    if MODEL_CHANNEL not in env.available_channels():
        return None
    if env.input_mode(MODEL_CHANNEL) == INPUT_MODE_PIPE:
        raise UserError(f"channel {MODEL_CHANNEL!r} uses Pipe input mode; declare it with "
                        "input_mode='File' (ContentType application/x-sagemaker-model)")
    folder = env.channel_dir(MODEL_CHANNEL)
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    archives = [p for p in files if p.name.endswith(ARCHIVE_SUFFIXES)]
    if (folder / METADATA_FILE).is_file():
        source = folder
        raw = {name: (folder / name).read_bytes() for name in (METADATA_FILE, WEIGHTS_FILE)
               if (folder / name).is_file()}
    elif len(archives) == 1:
        source = archives[0]
        raw = read_files(source, (METADATA_FILE, WEIGHTS_FILE), max_bytes=_max_bytes(),
                         what=WHAT)
    else:
        found = ", ".join(p.name for p in files[:5]) or "nothing"
        raise UserError(
            f"channel {MODEL_CHANNEL!r} ({folder}) holds {found}; it needs one model.tar.gz "
            f"written by a training job of this image, or its extracted {WEIGHTS_FILE} and "
            f"{METADATA_FILE}"
        )
    missing = [name for name in (METADATA_FILE, WEIGHTS_FILE) if name not in raw]
    if missing:
        raise UserError(f"channel {MODEL_CHANNEL!r}: {source.name} has no {' or '.join(missing)}"
                        "; it was not written by this image's train command")
    previous = PreviousModel(_metadata(raw[METADATA_FILE], source), _weights(raw[WEIGHTS_FILE],
                                                                             source), source)
    log.info("incremental training: starting from %s (%s %s, %d classes)", source,
             previous.metadata.task, previous.metadata.architecture,
             previous.metadata.num_classes)
    return previous


def _max_bytes() -> int:
    return int(os.environ.get(MAX_BYTES_ENV, DEFAULT_MAX_BYTES))


def _metadata(data: bytes, source: Path) -> Metadata:
    try:
        return Metadata.from_dict(json.loads(data))
    except (json.JSONDecodeError, UnicodeDecodeError, ArtifactError) as exc:
        raise UserError(f"channel {MODEL_CHANNEL!r}: {METADATA_FILE} of {source.name} cannot be "
                        f"read ({exc})") from None


def _weights(data: bytes, source: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    try:
        return load_tensors(data)
    except (SafetensorError, ValueError) as exc:
        raise UserError(f"channel {MODEL_CHANNEL!r}: {WEIGHTS_FILE} of {source.name} is not a "
                        f"readable safetensors file ({exc})") from None


def require_same(previous: PreviousModel, task: str,
                 settings: list[tuple[str, object, object]]) -> None:
    """Refuse a previous model of another task, or whose network-defining ``settings``
    (name, previous value, this job's value) differ, naming every difference."""
    if previous.metadata.task != task:
        raise UserError(f"channel {MODEL_CHANNEL!r} holds a {previous.metadata.task} model; "
                        f"this job trains {task}. Pass a model of the same task")
    differences = [f"{name}={before} in the previous model but {name}={now} in this job"
                   for name, before, now in settings if before != now]
    if differences:
        raise UserError(
            f"incremental training needs the previous model's network: "
            f"{'; '.join(differences)}. Set the hyperparameters to the previous model's values, "
            f"or drop the {MODEL_CHANNEL!r} channel to train from scratch"
        )


def apply(previous: PreviousModel, model: Any) -> None:
    """Load the previous weights into ``model`` (strict: every tensor, every shape)."""
    try:
        model.load_state_dict(previous.state_dict)
    except RuntimeError as exc:
        raise UserError(f"the {MODEL_CHANNEL!r} channel's weights do not fit this network "
                        f"({str(exc).splitlines()[0]}); was it written by another version of "
                        "this image?") from None
