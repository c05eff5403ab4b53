"""ImageNet weights for ``use_pretrained_model=1``, from local files only unless asked.

Looked up, in order:
1. the ``weights`` channel (``/opt/ml/input/data/weights/``): torchvision's file name
   (e.g. ``resnet50-0676ba61.pth``) or a single ``.pth``/``.pt``/``.safetensors`` file;
2. torch hub's cache, ``$TORCH_HOME/hub/checkpoints/<torchvision file name>`` (the image can
   bake weights in there at build time).
A missing file is a ``UserError`` that lists the places searched. Downloading happens only with
``download_pretrained=1``; there is never a silent fallback to random weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from train.errors import UserError

log = logging.getLogger(__name__)

WEIGHTS_CHANNEL = "weights"
WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")


def weights_enum(architecture: str, num_layers: int | None) -> Any:
    from torchvision import models

    name = "VGG16_Weights" if architecture == "vgg16" else f"ResNet{num_layers}_Weights"
    return getattr(models, name)


def known_filenames(architecture: str, num_layers: int | None) -> list[str]:
    """torchvision's file names for this network, the default weights first."""
    enum = weights_enum(architecture, num_layers)
    ordered = [enum.DEFAULT, *[w for w in enum if w is not enum.DEFAULT]]
    return [w.url.rsplit("/", 1)[-1] for w in ordered if w.name.startswith("IMAGENET1K_V")]


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_local(architecture: str, num_layers: int | None, weights_dir: Path) -> Path | None:
    names = known_filenames(architecture, num_layers)
    for directory in (weights_dir, hub_checkpoint_dir()):
        for name in names:
            if (directory / name).is_file():
                return directory / name
    if weights_dir.is_dir():
        files = [p for p in weights_dir.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()]
        if len(files) == 1:
            return files[0]
        if len(files) > 1:
            raise UserError(
                f"the {WEIGHTS_CHANNEL!r} channel holds several weight files "
                f"({', '.join(sorted(p.name for p in files))}); keep one, or name it "
                f"{names[0]}"
            )
    return None


def read_state_dict(path: Path) -> dict[str, Any]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"pretrained weights {path} cannot be read: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"pretrained weights {path} do not hold a state_dict")
    return state


def load_imagenet_weights(
    architecture: str, num_layers: int | None, weights_dir: Path, allow_download: bool
) -> dict[str, Any]:
    path = find_local(architecture, num_layers, weights_dir)
    if path is not None:
        log.info("loading ImageNet weights from %s", path)
        return read_state_dict(path)
    names = known_filenames(architecture, num_layers)
    if allow_download:
        log.info("downloading ImageNet weights %s into %s", names[0], hub_checkpoint_dir())
        return weights_enum(architecture, num_layers).DEFAULT.get_state_dict(progress=False)
    raise UserError(
        f"use_pretrained_model=1 but no ImageNet weights for {architecture}"
        f"{num_layers if architecture == 'resnet' else ''} were found. Looked for "
        f"{' or '.join(names)} in {weights_dir} (the {WEIGHTS_CHANNEL!r} channel) and in "
        f"{hub_checkpoint_dir()} (TORCH_HOME). Provide the file through a {WEIGHTS_CHANNEL!r} "
        "channel, bake it into the image (build arg), or set download_pretrained=1 if the job "
        "has internet access."
    )
