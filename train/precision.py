"""Mixed precision and memory format, the same for every task: autocast and gradient scaling
on CUDA (``precision_dtype`` float16 or bfloat16), float32 on CPU; channels-last on CUDA."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Precision:
    device: torch.device
    dtype: torch.dtype | None  # None: plain float32

    @classmethod
    def choose(cls, name: str, device: torch.device) -> Precision:
        if name == "float32":
            return cls(device, None)
        if device.type != "cuda":
            log.warning("precision_dtype=%s applies on CUDA only; training in float32 on CPU",
                        name)
            return cls(device, None)
        return cls(device, getattr(torch, name))

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler | None:
        """float16 needs gradient scaling; bfloat16 and float32 do not."""
        return torch.amp.GradScaler(self.device.type) if self.dtype == torch.float16 else None

    @property
    def channels_last(self) -> bool:
        return self.device.type == "cuda"

    def images(self, tensor: torch.Tensor) -> torch.Tensor:
        """A batch of images on the device, channels-last where that is faster."""
        tensor = tensor.to(self.device, non_blocking=True)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor
