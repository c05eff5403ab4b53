"""Semantic segmentation serving: one image in, per-pixel class probabilities out.

predict: the image is resized so its shorter side is the training crop size (the scale
validation measured mIOU at), with the longer side capped at ``MAX_NETWORK_SIDE``; the logits are
resized back to the input's size, so every answer is the size of the image sent. Images above
``MAX_SEGMENTATION_PIXELS`` (2048 x 2048) are refused with 400: the probability answer alone is
num_classes x H x W floats.

Answers (``Accept``): ``image/png`` (default) an indexed PNG of argmax class indices with a
Pascal-VOC palette; ``application/x-protobuf`` / ``application/x-recordio-protobuf`` one
RecordIO-framed ``Record`` with ``features["shape"]`` int32 [1, C, H, W] and
``features["target"]`` float32 probabilities (the built-in's answer); ``application/x-npy`` a
float32 array of shape [1, C, H, W].
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from common.preprocessing import ImageDecodeError, decode_image
from serve import contract, decoders, protobuf_record
from serve.decoders import Decoded, ImageInput
from serve.errors import BadInput

MAX_SEGMENTATION_PIXELS = 2048 * 2048
MAX_NETWORK_SIDE = 1024

CT_PROTOBUF = "application/x-protobuf"
CT_RECORDIO_PROTOBUF = "application/x-recordio-protobuf"
DEFAULT_ACCEPT = contract.CT_PNG


def to_image(data: ImageInput) -> Image.Image:
    if isinstance(data, np.ndarray):
        return Image.fromarray(data[..., 0] if data.shape[-1] == 1 else data).convert("RGB")
    try:
        image = decode_image(data)
    except ImageDecodeError as exc:
        raise BadInput(str(exc)) from exc
    if image.width * image.height > MAX_SEGMENTATION_PIXELS:
        raise BadInput(
            f"image is {image.width}x{image.height}; segmentation answers images of at most "
            f"{MAX_SEGMENTATION_PIXELS} pixels (2048x2048); send a smaller image"
        )
    return image


def network_input(image: Image.Image, short_side: int, mean: tuple[float, ...],
                  std: tuple[float, ...]) -> torch.Tensor:
    w, h = image.size
    ratio = min(short_side / min(w, h), MAX_NETWORK_SIDE / max(w, h))
    size = (max(8, round(w * ratio)), max(8, round(h * ratio)))
    pixels = np.asarray(image.resize(size, Image.BILINEAR), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(pixels).permute(2, 0, 1)
    normalized = (tensor - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    return normalized.unsqueeze(0)


def probabilities(network: torch.nn.Module, image: Image.Image, short_side: int,
                  mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
                  ) -> np.ndarray:
    """float32 [1, C, H, W] at the image's own size."""
    batch = network_input(image, short_side, mean, std).to(device)
    with torch.inference_mode():
        logits = network(batch)["out"].float()
        logits = F.interpolate(logits, size=(image.height, image.width), mode="bilinear",
                               align_corners=False)
        return torch.softmax(logits, dim=1).cpu().numpy()


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


def encode_png(probs: np.ndarray) -> bytes:
    mask = Image.fromarray(probs[0].argmax(axis=0).astype(np.uint8), mode="P")
    mask.putpalette(voc_palette())
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


def encode_protobuf(probs: np.ndarray) -> bytes:
    message = protobuf_record.record({
        "shape": protobuf_record.int32_tensor(list(probs.shape)),
        "target": protobuf_record.float32_tensor(probs),
    })
    return protobuf_record.recordio_frame(message)


def encode_npy(probs: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, probs.astype(np.float32), allow_pickle=False)
    return out.getvalue()


SEGMENTATION_DECODERS: dict[str, Callable[[bytes], Decoded]] = {
    contract.CT_JPEG: decoders.decode_image,
    contract.CT_PNG: decoders.decode_image,
    contract.CT_X_IMAGE: decoders.decode_image,
}

SEGMENTATION_ENCODERS: dict[str, Callable[[np.ndarray], bytes]] = {
    contract.CT_PNG: encode_png,
    CT_PROTOBUF: encode_protobuf,
    CT_RECORDIO_PROTOBUF: encode_protobuf,
    contract.CT_NPY: encode_npy,
}

