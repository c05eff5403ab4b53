"""The model: load it from the artifact, warm it up, and turn images into class probabilities.

Preprocessing is ``common.preprocessing.eval_transform``, the exact transform training validated
with. Images are preprocessed and run a micro-batch at a time, so a large request costs memory
for one micro-batch, not for the whole request. One forward pass runs at a time per worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from common.artifact import (
    TASK_CLASSIFICATION,
    TASK_SEGMENTATION,
    ArtifactError,
    Metadata,
    load_metadata,
    load_state_dict,
)
from common.models import build_classifier
from common.preprocessing import ImageDecodeError, decode_image, eval_transform
from common.segmentation import build_segmenter
from serve import contract
from serve.decoders import ImageInput
from serve.errors import BadInput, Unavailable

MICRO_BATCH = 32


@dataclass
class Classifier:
    meta: Metadata
    network: nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    device: torch.device
    # Serializes forward passes: concurrent ones would only fight over cores or GPU memory.
    lock: threading.Lock = field(default_factory=threading.Lock)


def pick_device(worker_ordinal: int) -> torch.device:
    """Spread workers over the GPUs (called in the worker, never in the gunicorn master)."""
    if torch.cuda.is_available():
        return torch.device("cuda", worker_ordinal % torch.cuda.device_count())
    return torch.device("cpu")


def load(model_dir: Path, device: torch.device) -> Classifier:
    meta = load_metadata(model_dir)
    if meta.task not in (TASK_CLASSIFICATION, TASK_SEGMENTATION):
        raise ArtifactError(f"the model in {model_dir} is a {meta.task} model, which this "
                            "server does not answer")
    try:
        network = _build(meta)
        network.load_state_dict(load_state_dict(model_dir))
    except (RuntimeError, ValueError) as exc:  # unknown network, missing or mis-shaped tensors
        raise ArtifactError(
            f"weights in {model_dir} do not fit {meta.architecture}: {exc}"
        ) from exc
    network.eval().to(device)
    return Classifier(
        meta=meta, network=network, transform=eval_transform(meta.input), device=device
    )


def _build(meta: Metadata) -> nn.Module:
    if meta.task == TASK_SEGMENTATION:
        backbone = meta.backbone or f"resnet-{meta.num_layers}"
        return build_segmenter(meta.architecture, backbone, meta.num_classes)
    return build_classifier(meta.architecture, meta.num_layers, meta.num_classes)


def warm_up(classifier: Classifier) -> None:
    """Full passes on blank images, one alone and one full micro-batch, so that neither the
    first single-image request nor the first batch pays the kernels' and allocator's set-up."""
    spec = classifier.meta.input
    blank = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)
    if classifier.meta.task == TASK_SEGMENTATION:
        predict_segmentation(classifier, blank, timeout_s=None)
        return
    for size in (1, MICRO_BATCH):
        predict(classifier, [blank] * size, timeout_s=None)


def _to_rgb(image: ImageInput, index: int) -> Image.Image:
    if isinstance(image, np.ndarray):
        return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).convert("RGB")
    try:
        return decode_image(image)
    except ImageDecodeError as exc:
        raise BadInput(f"image {index}: {exc}") from exc


def predict(
    classifier: Classifier, images: Sequence[ImageInput], timeout_s: float | None
) -> np.ndarray:
    """Class probabilities, shape (len(images), num_classes), in label order."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    activation = torch.sigmoid if classifier.meta.multi_label else _softmax
    outputs = []
    for start in range(0, len(images), MICRO_BATCH):
        chunk = images[start : start + MICRO_BATCH]
        batch = torch.stack(
            [classifier.transform(_to_rgb(image, start + i)) for i, image in enumerate(chunk)]
        )
        _acquire(classifier.lock, deadline, timeout_s)
        try:
            with torch.inference_mode():
                logits = classifier.network(batch.to(classifier.device))
                outputs.append(activation(logits.float()).cpu().numpy())
        finally:
            classifier.lock.release()
    return np.concatenate(outputs)


def predict_segmentation(
    classifier: Classifier, image: ImageInput, timeout_s: float | None
) -> np.ndarray:
    """Per-pixel class probabilities, float32 [1, num_classes, height, width]."""
    from serve import segmentation

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    picture = segmentation.to_image(image)
    spec = classifier.meta.input
    _acquire(classifier.lock, deadline, timeout_s)
    try:
        return segmentation.probabilities(classifier.network, picture, spec.resize, spec.mean,
                                          spec.std, classifier.device)
    finally:
        classifier.lock.release()


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1)


def _acquire(lock: threading.Lock, deadline: float | None, timeout_s: float | None) -> None:
    if deadline is None:
        lock.acquire()
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not lock.acquire(timeout=remaining):
        raise Unavailable(
            f"inference did not finish within {contract.ENV_TIMEOUT}={timeout_s:g}s; "
            "send fewer images per request, add instances, or raise the timeout"
        )
