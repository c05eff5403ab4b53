"""Segmentation network builders shared by training and serving: FCN, PSP and DeepLabV3.

Every network is ``backbone -> head (+ auxiliary head on layer3)`` and returns
``{"out": logits, "aux": logits}`` at the input resolution, like torchvision's models.

* ResNet-50/101: torchvision's dilated backbone (output stride 8: layer3 and layer4 dilated).
  FCN and DeepLabV3 come from ``torchvision.models.segmentation`` (``weights=None``,
  ``weights_backbone=None``); PSP puts :class:`PSPHead` on the same backbone.
* ResNet-18/34: their BasicBlock cannot dilate, so the strides of layer3 and layer4 are removed
  instead (output stride 8, no dilation; the receptive field is smaller than the dilated
  Bottleneck version). Heads and auxiliary heads are the same classes.

ImageNet backbone weights (a torchvision ``resnetNN`` state_dict) are loaded strictly into the
backbone, without its ``fc`` layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

ALGORITHMS = ("fcn", "psp", "deeplab")
BACKBONES = ("resnet-50", "resnet-101", "resnet-18", "resnet-34")
_BOTTLENECK_DEPTHS = (50, 101)
_CHANNELS = {18: (256, 512), 34: (256, 512), 50: (1024, 2048), 101: (1024, 2048)}
PSP_BINS = (1, 2, 3, 6)


def backbone_depth(backbone: str) -> int:
    """``"resnet-50"`` -> 50."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    return int(backbone.split("-")[1])


class PSPHead(nn.Module):
    """Pyramid pooling: pool the features into 1x1, 2x2, 3x3 and 6x6 grids, reduce each with a
    1x1 convolution, upsample, concatenate with the features, then a 3x3 conv and classifier."""

    def __init__(self, in_channels: int, num_classes: int, bins: tuple[int, ...] = PSP_BINS):
        super().__init__()
        reduced = in_channels // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(size),
                nn.Conv2d(in_channels, reduced, 1, bias=False),
                nn.BatchNorm2d(reduced),
                nn.ReLU(inplace=True),
            )
            for size in bins
        )
        mid = in_channels // 4
        self.bottleneck = nn.Sequential(
            nn.Conv2d(in_channels + reduced * len(bins), mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Dropout(0.1),
            nn.Conv2d(mid, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [
            F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False)
            for stage in self.stages
        ]
        return self.bottleneck(torch.cat([x, *pooled], dim=1))


class SegmentationNet(nn.Module):
    """Backbone (an IntermediateLayerGetter giving ``out`` and ``aux``) plus heads."""

    def __init__(self, backbone: nn.Module, head: nn.Module, aux_head: nn.Module | None):
        super().__init__()
        self.backbone = backbone
        self.classifier = head
        self.aux_classifier = aux_head

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        features = self.backbone(x)
        result = {"out": _upsample(self.classifier(features["out"]), size)}
        if self.aux_classifier is not None:
            result["aux"] = _upsample(self.aux_classifier(features["aux"]), size)
        return result


def _upsample(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _resnet_backbone(depth: int) -> nn.Module:
    from torchvision import models
    from torchvision.models._utils import IntermediateLayerGetter

    builder = getattr(models, f"resnet{depth}")
    if depth in _BOTTLENECK_DEPTHS:
        net = builder(weights=None, replace_stride_with_dilation=[False, True, True])
    else:
        net = builder(weights=None)
        for layer in (net.layer3, net.layer4):
            first = layer[0]
            first.conv1.stride = (1, 1)
            if first.downsample is not None:
                first.downsample[0].stride = (1, 1)
    return IntermediateLayerGetter(net, return_layers={"layer3": "aux", "layer4": "out"})


def _heads(algorithm: str, depth: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead
    from torchvision.models.segmentation.fcn import FCNHead

    aux_channels, out_channels = _CHANNELS[depth]
    if algorithm == "fcn":
        head: nn.Module = FCNHead(out_channels, num_classes)
    elif algorithm == "deeplab":
        head = DeepLabHead(out_channels, num_classes)
    else:
        head = PSPHead(out_channels, num_classes)
    return head, FCNHead(aux_channels, num_classes)


def build_segmenter(
    algorithm: str,
    backbone: str,
    num_classes: int,
    imagenet_state_dict: Mapping[str, Any] | None = None,
    aux_loss: bool = True,
) -> nn.Module:
    """The network for ``algorithm`` on ``backbone`` with ``num_classes`` output channels."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
    depth = backbone_depth(backbone)
    if depth in _BOTTLENECK_DEPTHS and algorithm != "psp":
        from torchvision.models import segmentation

        name = "fcn" if algorithm == "fcn" else "deeplabv3"
        model: nn.Module = getattr(segmentation, f"{name}_resnet{depth}")(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=aux_loss
        )
    else:
        head, aux_head = _heads(algorithm, depth, num_classes)
        model = SegmentationNet(_resnet_backbone(depth), head, aux_head if aux_loss else None)
    if imagenet_state_dict is not None:
        weights = {k: v for k, v in imagenet_state_dict.items() if not k.startswith("fc.")}
        model.backbone.load_state_dict(weights, strict=True)
    return model
