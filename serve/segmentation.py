"""Semantic segmentation serving: images in, per-pixel class probabilities out.

predict: the image is resized so its shorter side is the training crop size (the scale
validation measured mIOU at), with the longer side capped at ``MAX_NETWORK_SIDE``; the logits are
resized back to the input's size, so every answer is the size of the image sent. Images above
``MAX_SEGMENTATION_PIXELS`` (2048 x 2048) are refused with 400: the probability answer alone is
num_classes x H x W floats.

Requests: one image (``image/jpeg``, ``image/png``, ``application/x-image``), or a batch
(``application/x-npy`` NHWC, ``application/json`` / ``application/jsonlines`` base64 lists, as
for classification). Answers (``Accept``): ``image/png`` (default, one image) an indexed PNG of
argmax class indices with a Pascal-VOC palette; ``application/x-protobuf`` /
``application/x-recordio-protobuf`` one RecordIO-framed ``Record`` per image with
``features["shape"]`` int32 [1, C, H, W] and ``features["target"]`` float32 probabilities (the
built-in's answer); ``application/x-npy`` a float32 array [N, C, H, W] (images of one size).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from serve import contract, decoders, images, protobuf_record
from serve.decoders import Decoded, ImageInput
from serve.errors import BadInput

MAX_SEGMENTATION_PIXELS = 2048 * 2048
MAX_NETWORK_SIDE = 1024

CT_PROTOBUF = "application/x-protobuf"
CT_RECORDIO_PROTOBUF = "application/x-recordio-protobuf"
DEFAULT_ACCEPT = contract.CT_PNG

Probabilities = np.ndarray  # float32 [C, H, W]


def to_image(data: ImageInput) -> Image.Image:
    if isinstance(data, np.ndarray):
        image = images.array_image(data, resize=None)
    else:
        image = images.open_image(data, resize=None)
    if image.width * image.height > MAX_SEGMENTATION_PIXELS:
        raise BadInput(
            f"image is {image.width}x{image.height}; segmentation answers images of at most "
            f"{MAX_SEGMENTATION_PIXELS} pixels (2048x2048); send a smaller image"
        )
    return image


def network_input(image: Image.Image, short_side: int, mean: tuple[float, ...],
                  std: tuple[float, ...]) -> np.ndarray:
    """float32 [3, h, w]: shorter side ``short_side`` (longer side at most 1024), normalized."""
    w, h = image.size
    ratio = min(short_side / min(w, h), MAX_NETWORK_SIDE / max(w, h))
    size = (max(8, round(w * ratio)), max(8, round(h * ratio)))
    pixels = np.asarray(image.resize(size, Image.BILINEAR), dtype=np.float32) / 255.0
    normalized = (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(normalized.transpose(2, 0, 1))


def probabilities(logits: np.ndarray, size: tuple[int, int]) -> Probabilities:
    """[C, h, w] logits -> softmax at ``size`` (H, W), bilinear (Pillow), without torch."""
    height, width = size
    if logits.shape[1:] != (height, width):
        logits = np.stack([np.asarray(Image.fromarray(channel).resize((width, height),
                                                                       Image.BILINEAR))
                           for channel in logits.astype(np.float32)])
    shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
    return (shifted / shifted.sum(axis=0, keepdims=True)).astype(np.float32)


def probabilities_exact(logits: np.ndarray, size: tuple[int, int]) -> Probabilities:
    """The same with torch's interpolate and softmax: training's validation computes these."""
    import torch
    from torch.nn import functional as F

    tensor = torch.from_numpy(logits).unsqueeze(0)
    resized = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
    return torch.softmax(resized, dim=1)[0].numpy()


def voc_palette() -> list[int]:
    """256 RGB colours: class 0 black, then the Pascal VOC colour scheme (255 off-white)."""
    palette = []
    for index in range(256):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette += [r, g, b]
    palette[255 * 3 : 256 * 3] = [224, 224, 192]
    return palette


def encode_png(answers: Sequence[Probabilities]) -> bytes:
    mask = Image.fromarray(answers[0].argmax(axis=0).astype(np.uint8), mode="P")
    mask.putpalette(voc_palette())
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


def encode_protobuf(answers: Sequence[Probabilities]) -> bytes:
    """One RecordIO-framed Record per image, in request order."""
    return b"".join(
        protobuf_record.recordio_frame(protobuf_record.record({
            "shape": protobuf_record.int32_tensor([1, *probs.shape]),
            "target": protobuf_record.float32_tensor(probs[np.newaxis]),
        }))
        for probs in answers
    )


def encode_npy(answers: Sequence[Probabilities]) -> bytes:
    if len({probs.shape for probs in answers}) > 1:
        raise BadInput("the images of this batch differ in size, so their probabilities are no "
                       f"single array; ask for {CT_RECORDIO_PROTOBUF} or send one size")
    out = io.BytesIO()
    np.save(out, np.stack(answers).astype(np.float32), allow_pickle=False)
    return out.getvalue()


def encodes_batches(content_type: str) -> bool:
    return content_type != contract.CT_PNG


SEGMENTATION_DECODERS: dict[str, Callable[[bytes], Decoded]] = dict(decoders.DECODERS)

SEGMENTATION_ENCODERS: dict[str, Callable[[Sequence[Probabilities]], bytes]] = {
    contract.CT_PNG: encode_png,
    CT_PROTOBUF: encode_protobuf,
    CT_RECORDIO_PROTOBUF: encode_protobuf,
    contract.CT_NPY: encode_npy,
}
