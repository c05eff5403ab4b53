"""Network builders shared by training and serving.

Both sides build the torchvision network with its ImageNet head, then swap the head for one
with ``num_classes`` outputs. Training may load ImageNet weights in between; serving loads the
artifact's weights afterwards. One code path keeps the two state_dict layouts identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from common.artifact import Metadata

RESNET_DEPTHS = (18, 34, 50, 101, 152)
CLASSIFICATION_ARCHITECTURES = ("resnet", "vgg16")


def _torchvision_builder(architecture: str, num_layers: int | None) -> Any:
    from torchvision import models

    if architecture == "vgg16":
        return models.vgg16
    if architecture == "resnet":
        if num_layers not in RESNET_DEPTHS:
            raise ValueError(f"num_layers={num_layers} is not one of {RESNET_DEPTHS}")
        return getattr(models, f"resnet{num_layers}")
    known = ", ".join(CLASSIFICATION_ARCHITECTURES)
    raise ValueError(f"unknown architecture {architecture!r}; known: {known}")


def build_classifier(
    architecture: str,
    num_layers: int | None,
    num_classes: int,
    imagenet_state_dict: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Return the network with a fresh ``num_classes`` head.

    ``imagenet_state_dict`` (torchvision's 1000-class weights) is loaded strictly before the
    head is replaced, so a file for the wrong architecture fails loudly instead of half-loading.
    """
    model = _torchvision_builder(architecture, num_layers)(weights=None)
    if imagenet_state_dict is not None:
        model.load_state_dict(imagenet_state_dict, strict=True)
    if architecture == "vgg16":
        # As in the dog-breed workflow: keep the classifier, replace only its last Linear.
        last = model.classifier[6]
        model.classifier[6] = nn.Linear(last.in_features, num_classes)
    else:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def head_parameter_prefixes(architecture: str) -> tuple[str, ...]:
    """Parameter-name prefixes that stay trainable when the backbone is frozen."""
    return ("classifier.",) if architecture == "vgg16" else ("fc.",)


def freeze_backbone(model: nn.Module, architecture: str) -> None:
    """Freeze everything but the head (VGG16: all of ``features``, as the seed does)."""
    prefixes = head_parameter_prefixes(architecture)
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(prefixes)


def build_from_artifact(meta: Metadata, state_dict: Mapping[str, Any]) -> nn.Module:
    """The artifact's network (classifier or segmenter) holding ``state_dict``, in eval mode.

    Built on the meta device and the tensors assigned, so no time goes into random weights that
    would be overwritten (seconds for the big ResNets). Raises what ``load_state_dict`` raises
    when the tensors do not fit.
    """
    import torch

    from common.artifact import TASK_SEGMENTATION
    from common.segmentation import build_segmenter

    with torch.device("meta"):
        if meta.task == TASK_SEGMENTATION:
            backbone = meta.backbone or f"resnet-{meta.num_layers}"
            network = build_segmenter(meta.architecture, backbone, meta.num_classes)
        else:
            network = build_classifier(meta.architecture, meta.num_layers, meta.num_classes)
    network.load_state_dict(state_dict, assign=True)
    return network.eval()
