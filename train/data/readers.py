"""Pick the reader for a channel from its content type and input mode."""

from __future__ import annotations

from train.contract import INPUT_MODE_PIPE, TrainingEnv
from train.data.base import Reader
from train.data.folder import ImageFolderReader
from train.errors import UserError

# Content types that mean "image files in folders" (None: the channel declared none).
FOLDER_CONTENT_TYPES = frozenset(
    {None, "application/x-image", "image/jpeg", "image/png", "application/octet-stream"}
)


def create_reader(env: TrainingEnv, channel: str, class_names: list[str] | None) -> Reader:
    content_type = env.content_type(channel)
    base_type = content_type.split(";")[0].strip().lower() if content_type else None
    if base_type not in FOLDER_CONTENT_TYPES:
        raise UserError(
            f"channel {channel!r} has ContentType {content_type!r}, which this version does not "
            "read yet; supported: image folders (application/x-image, image/jpeg, image/png)"
        )
    if env.input_mode(channel) == INPUT_MODE_PIPE:
        raise UserError(
            f"channel {channel!r} uses Pipe input mode, but image folders need File or FastFile "
            "mode; set input_mode='File' for this channel"
        )
    return ImageFolderReader(env.channel_dir(channel), channel, class_names)
