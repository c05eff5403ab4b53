"""Image folders: ``<channel>/<class name>/<image>``; labels are sorted class-folder names.

This is torchvision's ImageFolder layout and the dog-breed workflow's
(``dogImages/train/001.Affenpinscher/...``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from train.data.base import RawSample, Reader
from train.errors import UserError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
)


class ImageFolderReader(Reader):
    def __init__(self, root: Path, channel: str, class_names: list[str] | None = None) -> None:
        """List ``root``. ``class_names`` (from the training channel) fixes the label order."""
        self.root = root
        found = _scan(root, channel)
        if class_names is None:
            class_names = sorted(found)
            empty = [c for c in class_names if not found[c]]
            if empty:
                raise UserError(
                    f"channel {channel!r}: class folder(s) {', '.join(empty[:5])} in {root} "
                    "contain no images; add images or remove the folder"
                )
        else:
            unknown = sorted(set(found) - set(class_names))
            if unknown:
                raise UserError(
                    f"channel {channel!r} has class folder(s) {', '.join(unknown[:5])} that the "
                    "training channel does not have; every class must appear in training data"
                )
        self.class_names = class_names
        label_of = {name: i for i, name in enumerate(class_names)}
        self._files: list[tuple[str, int]] = [
            (str(path.relative_to(root)), label_of[cls])
            for cls in sorted(found)
            for path in found[cls]
        ]
        if not self._files:
            raise UserError(
                f"channel {channel!r} at {root} has no images; expected "
                f"<class name>/<image> files with one of: {', '.join(sorted(IMAGE_SUFFIXES))}"
            )

    def __len__(self) -> int:
        return len(self._files)

    def read(self, index: int) -> RawSample:
        relative, label = self._files[index]
        return RawSample(name=relative, data=(self.root / relative).read_bytes(), target=label)

    def targets(self) -> list[int]:
        return [label for _, label in self._files]


def _scan(root: Path, channel: str) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise UserError(
            f"channel {channel!r} not found: expected a folder {root} with one subfolder per "
            "class (e.g. train/cat/1.jpg, train/dog/2.jpg)"
        )
    classes: dict[str, list[Path]] = {}
    ignored = 0
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            ignored += 1
            continue
        images = []
        for path in sorted(entry.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(path)
            else:
                ignored += 1
        classes[entry.name] = images
    if not classes:
        raise UserError(
            f"channel {channel!r} at {root} has no class folders; expected one subfolder per "
            "class (e.g. train/cat/1.jpg). Files directly in the channel are not labelled."
        )
    if ignored:
        log.info("channel %s: ignored %d files that are not images or not in a class folder",
                 channel, ignored)
    return classes
