"""Evaluation preprocessing, shared by validation during training and by the model server.

Image bytes → RGB → resize the shorter side to ``resize`` → centre crop ``height`` x ``width``
→ float tensor in [0, 1] → normalize with the artifact's mean/std.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import torch
from PIL import Image

from common.artifact import InputSpec

# ImageNet statistics: what torchvision's pretrained weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Images above this many pixels are refused before decoding (decompression bombs):
# 8192 x 8192, well above any camera image, and 200 MB as RGB.
MAX_IMAGE_PIXELS = 8192 * 8192


class ImageDecodeError(ValueError):
    """The bytes are not an image this toolkit can read."""


def decode_image(data: bytes) -> Image.Image:
    """Decode image bytes (JPEG, PNG, or any format Pillow reads) into an RGB image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            # The header is parsed lazily; check the size before decoding any pixels.
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageDecodeError(
                    f"image is {width}x{height} pixels, above the limit of {MAX_IMAGE_PIXELS}"
                )
            img.load()
            return img.convert("RGB")
    except ImageDecodeError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise ImageDecodeError(f"cannot decode image: {exc}") from exc


def eval_transform(spec: InputSpec) -> Callable[[Image.Image], torch.Tensor]:
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(spec.resize, antialias=True),
            v2.CenterCrop((spec.height, spec.width)),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(spec.mean), std=list(spec.std)),
        ]
    )
