"""One handler per task: decode -> predict -> encode. Chosen once, when the model loads.

``ClassificationHandler`` answers like the built-in image-classification algorithm (class
probabilities as JSON or JSON Lines); ``SegmentationHandler`` like the built-in semantic
segmentation algorithm (PNG masks, RecordIO-protobuf or npy probabilities). Both take one image
or a batch, preprocess in the request's thread (many requests in parallel) and run the network
through the worker's ``Batcher``. The routes (``serve.app``) only negotiate and call ``answer``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from common.artifact import (
    METADATA_FILE,
    TASK_CLASSIFICATION,
    TASK_SEGMENTATION,
    ArtifactError,
    Metadata,
)
from serve import contract, images, segmentation
from serve.batcher import Batcher, Deadline
from serve.decoders import DECODERS, Decoded, ImageInput
from serve.encoders import ENCODERS
from serve.errors import BadInput
from serve.negotiation import Negotiated
from serve.runtimes import Runtime

# Images preprocessed before their batch goes to the network: a large request holds the pixels
# of this many images at a time, not of all of them.
PREPROCESS_CHUNK = 32


class ClassificationHandler:
    decoders: Mapping[str, Callable[[bytes], Decoded]] = DECODERS
    encoders: Mapping[str, Callable[..., bytes]] = ENCODERS
    default_accept = contract.DEFAULT_ACCEPT

    def __init__(self, meta: Metadata, runtime: Runtime, batcher: Batcher) -> None:
        self.meta = meta
        self.runtime = runtime
        self.batcher = batcher
        self._exact = _exact_transform(meta) if runtime.exact_preprocessing else None

    def answer(self, body: bytes, wanted: Negotiated, deadline: Deadline) -> bytes:
        decoded = self.decoders[wanted.request_type](body)
        probabilities = self.predict(decoded.images, deadline)
        return self.encoders[wanted.response_type](
            probabilities, decoded.batch, self.meta.class_names, wanted.options)

    def predict(self, inputs: Sequence[ImageInput], deadline: Deadline) -> np.ndarray:
        """Class probabilities, (len(inputs), num_classes), in label order."""
        outputs = []
        for start in range(0, len(inputs), PREPROCESS_CHUNK):
            chunk = inputs[start:start + PREPROCESS_CHUNK]
            batch = []
            for index, item in enumerate(chunk, start=start):
                deadline.check()
                batch.append(self.preprocess(item, index))
            outputs.append(self.batcher.infer(np.stack(batch), deadline))
        logits = np.concatenate(outputs) if len(outputs) > 1 else outputs[0]
        return sigmoid(logits) if self.meta.multi_label else softmax(logits, axis=1)

    def preprocess(self, item: ImageInput, index: int) -> np.ndarray:
        spec = self.meta.input
        try:
            if isinstance(item, np.ndarray):
                image = images.array_image(item, spec.resize)
            else:
                image = images.open_image(item, spec.resize, draft=self._exact is None)
        except BadInput as exc:
            raise BadInput(f"image {index}: {exc.message}") from exc
        if self._exact is not None:
            return self._exact(image)
        return images.classification_input(image, spec)

    def warm_up(self) -> None:
        """One full pass on a blank image: the first request does not pay the set-up, and a
        network that does not fit the metadata is found before /ping says ready."""
        spec = self.meta.input
        blank = self.preprocess(np.zeros((spec.height, spec.width, 3), np.uint8), 0)
        check_classes(self.batcher.infer(blank[np.newaxis], Deadline(None)).shape[1], self.meta)


class SegmentationHandler:
    decoders = segmentation.SEGMENTATION_DECODERS
    encoders = segmentation.SEGMENTATION_ENCODERS
    default_accept = segmentation.DEFAULT_ACCEPT

    def __init__(self, meta: Metadata, runtime: Runtime, batcher: Batcher) -> None:
        self.meta = meta
        self.runtime = runtime
        self.batcher = batcher

    def answer(self, body: bytes, wanted: Negotiated, deadline: Deadline) -> bytes:
        decoded = self.decoders[wanted.request_type](body)
        encode = self.encoders[wanted.response_type]
        if decoded.batch and not segmentation.encodes_batches(wanted.response_type):
            raise BadInput(f"a batch of {len(decoded.images)} images has no single "
                           f"{wanted.response_type} answer; ask for "
                           f"{segmentation.CT_RECORDIO_PROTOBUF} or {contract.CT_NPY}")
        return encode([self.predict(item, index, deadline)
                       for index, item in enumerate(decoded.images)])

    def predict(self, item: ImageInput, index: int, deadline: Deadline) -> np.ndarray:
        """Per-pixel class probabilities, float32 [classes, height, width] at the image's size."""
        deadline.check()
        try:
            picture = segmentation.to_image(item)
        except BadInput as exc:
            raise BadInput(f"image {index}: {exc.message}") from exc
        spec = self.meta.input
        pixels = segmentation.network_input(picture, spec.resize, spec.mean, spec.std)
        logits = self.batcher.infer(pixels[np.newaxis], deadline)[0]
        size = (picture.height, picture.width)
        if self.runtime.exact_preprocessing:
            return segmentation.probabilities_exact(logits, size)
        return segmentation.probabilities(logits, size)

    def warm_up(self) -> None:
        spec = self.meta.input
        picture = segmentation.to_image(np.zeros((spec.height, spec.width, 3), np.uint8))
        pixels = segmentation.network_input(picture, spec.resize, spec.mean, spec.std)
        check_classes(self.batcher.infer(pixels[np.newaxis], Deadline(None)).shape[1], self.meta)


Handler = ClassificationHandler | SegmentationHandler
HANDLERS: dict[str, type[ClassificationHandler] | type[SegmentationHandler]] = {
    TASK_CLASSIFICATION: ClassificationHandler,
    TASK_SEGMENTATION: SegmentationHandler,
}


def check_classes(outputs: int, meta: Metadata) -> None:
    if outputs != meta.num_classes:
        raise ArtifactError(
            f"the weights do not fit {meta.architecture} with num_classes={meta.num_classes} "
            f"({METADATA_FILE}): the network outputs {outputs} classes; use the metadata.json "
            "written with these weights")


def softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # = 1 / (1 + exp(-x)), without overflow


def _exact_transform(meta: Metadata) -> Callable[[Any], np.ndarray]:
    """Training's own evaluation transform (torchvision), for ``SM_VISION_PRECISION=exact``."""
    from common.preprocessing import eval_transform

    transform = eval_transform(meta.input)
    return lambda image: transform(image).numpy()
