"""The model artifact: the only contract between the training and serving images.

A model directory (``/opt/ml/model``, packed by SageMaker into ``model.tar.gz``) holds:

``model.safetensors``
    The network's ``state_dict`` in the safetensors format, so loading it never unpickles
    arbitrary objects.
``metadata.json``
    Everything needed to rebuild the network and preprocess inputs without importing training
    code: task, architecture, class names in label order, input size, normalization,
    hyperparameters and final metrics. ``format_version`` is bumped on incompatible changes.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1

TASK_CLASSIFICATION = "image_classification"
TASK_SEGMENTATION = "semantic_segmentation"
TASKS = (TASK_CLASSIFICATION, TASK_SEGMENTATION)


class ArtifactError(Exception):
    """The model directory is missing, incomplete or written by an incompatible version."""


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the network's input tensor (see ``common.preprocessing``)."""

    channels: int
    height: int
    width: int
    resize: int  # shorter side is resized to this before the centre crop
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class Metadata:
    task: str
    architecture: str  # "resnet" | "vgg16" (classification); segmentation adds its own
    num_layers: int | None
    num_classes: int
    class_names: list[str]
    input: InputSpec
    multi_label: bool = False
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    framework: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # Segmentation only: "resnet-50" etc. (``architecture`` is then fcn | psp | deeplab).
    backbone: str | None = None
    # Graphs exported beside the weights (``common.export``): {"onnx": {"file": ...} or
    # {"error": "why not"}}. Optional: artifacts without it are served from the weights.
    exports: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Metadata:
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{METADATA_FILE} has format_version={version!r}; this image reads version "
                f"{FORMAT_VERSION}. Retrain the model with this image or serve it with the "
                "image version that trained it."
            )
        try:
            spec = raw["input"]
            input_spec = InputSpec(
                channels=int(spec["channels"]),
                height=int(spec["height"]),
                width=int(spec["width"]),
                resize=int(spec["resize"]),
                mean=tuple(float(v) for v in spec["mean"]),  # type: ignore[arg-type]
                std=tuple(float(v) for v in spec["std"]),  # type: ignore[arg-type]
            )
            meta = cls(
                task=str(raw["task"]),
                architecture=str(raw["architecture"]),
                num_layers=None if raw.get("num_layers") is None else int(raw["num_layers"]),
                num_classes=int(raw["num_classes"]),
                class_names=[str(c) for c in raw["class_names"]],
                input=input_spec,
                multi_label=bool(raw.get("multi_label", False)),
                hyperparameters=dict(raw.get("hyperparameters", {})),
                metrics={k: float(v) for k, v in raw.get("metrics", {}).items()},
                framework=dict(raw.get("framework", {})),
                format_version=int(version),
                backbone=None if raw.get("backbone") is None else str(raw["backbone"]),
                exports=dict(raw.get("exports") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{METADATA_FILE} is malformed: {exc!r}") from exc
        if meta.task not in TASKS:
            raise ArtifactError(f"{METADATA_FILE}: unknown task {meta.task!r}; known: {TASKS}")
        if len(meta.class_names) != meta.num_classes:
            raise ArtifactError(
                f"{METADATA_FILE}: {len(meta.class_names)} class names for "
                f"num_classes={meta.num_classes}"
            )
        return meta


@contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only once fully written and fsynced.

    Written to a temp file in the same directory, then renamed over ``path``: a crash or
    SIGTERM mid-write leaves the previous file intact. Readable by other users (0644).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; other users (serving) must read it
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path) as fh:
        fh.write(data)


def save(model_dir: str | os.PathLike[str], state_dict: dict[str, Any], meta: Metadata) -> None:
    """Write weights then metadata; metadata last so a half-written model never looks valid."""
    from safetensors.torch import save as save_tensors

    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    _atomic_write_bytes(out / WEIGHTS_FILE, save_tensors(tensors))
    _atomic_write_bytes(out / METADATA_FILE, meta.to_json().encode())


def load_metadata(model_dir: str | os.PathLike[str]) -> Metadata:
    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(
            f"no {METADATA_FILE} in {model_dir}: this directory was not written by this "
            "toolkit's train command (expected model.safetensors + metadata.json)"
        )
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    return Metadata.from_dict(raw)


def load_state_dict(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(model_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise ArtifactError(f"no {WEIGHTS_FILE} in {model_dir}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path} is not a readable safetensors file: {exc}") from exc
