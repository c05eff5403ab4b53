"""Which channel plays which role, under the names the seed workflows use."""

from __future__ import annotations

from train.contract import TrainingEnv
from train.errors import UserError

# First name present wins. Built-in algorithms use train/validation; the dog-breed workflow's
# dogImages/{train,valid,test}; SDK examples often say "training".
TRAIN_NAMES = ("train", "training")
VALIDATION_NAMES = ("validation", "valid", "val")
TEST_NAMES = ("test",)
# Channels that hold something other than images to learn from.
AUXILIARY_NAMES = ("weights", "model", "images")


def find_channel(env: TrainingEnv, names: tuple[str, ...], *, required: bool) -> str | None:
    available = env.available_channels()
    for name in names:
        if name in available:
            return name
    if required:
        shown = ", ".join(available) or "none"
        raise UserError(
            f"no training channel: expected one named {' or '.join(names)} "
            f"(channels given: {shown}); pass e.g. inputs={{'train': 's3://bucket/train/'}}"
        )
    return None


# Paired channels: the built-in "image format" sends images in `train` and their .lst list in
# `train_lst`; File-mode manifests find their images in `train_images` or a shared `images`.
LST_SUFFIX = "_lst"
IMAGES_SUFFIX = "_images"
SHARED_IMAGES = "images"


def lst_channel(channel: str) -> str:
    return channel + LST_SUFFIX


def images_channel(env: TrainingEnv, channel: str) -> str | None:
    """The channel holding a File-mode manifest's images, if there is one."""
    available = env.available_channels()
    for name in (channel + IMAGES_SUFFIX, SHARED_IMAGES):
        if name in available:
            return name
    return None
