"""``syncbn``: BatchNorm statistics over every process's batch, as one large batch has them.

On CUDA this is torch's ``nn.SyncBatchNorm``. torch's kernel for it is GPU-only, so on CPU
(gloo) each BatchNorm layer becomes ``GlooSyncBatchNorm``: the batch mean, then the variance
around it (two passes, as precise as one BatchNorm over the whole batch), come from sums
all-reduced over the process group by a differentiable all-reduce (its gradient is the
all-reduce of the gradients), so autograd also sums the gradient terms over every process;
running statistics are updated as ``nn.BatchNorm2d`` updates them.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(tensor)


class GlooSyncBatchNorm(nn.BatchNorm2d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(input)
        channels = input.shape[1]
        count = torch.tensor([input.numel() / channels], dtype=input.dtype)
        total = all_reduce(torch.cat([input.sum(dim=(0, 2, 3)), count]))
        n = total[-1]
        mean = total[:channels] / n
        centered = input - mean[None, :, None, None]
        var = all_reduce((centered * centered).sum(dim=(0, 2, 3))) / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                unbiased = var * n / (n - 1).clamp(min=1)
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.detach(), alpha=momentum)
        out = centered * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out


def convert(model: nn.Module, device: torch.device) -> nn.Module:
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_cpu(model)


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, GlooSyncBatchNorm):
        sync = GlooSyncBatchNorm(module.num_features, module.eps, module.momentum,
                                 module.affine, module.track_running_stats)
        reference = next(module.parameters(), None)
        if reference is not None:
            sync = sync.to(reference.device, reference.dtype)
        sync.load_state_dict(module.state_dict())
        sync.train(module.training)
        for parameter, original in zip(sync.parameters(), module.parameters(), strict=True):
            parameter.requires_grad_(original.requires_grad)
        return sync
    for name, child in module.named_children():
        module.add_module(name, _convert_cpu(child))
    return module
