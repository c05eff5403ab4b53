"""One channel holding split folders: the dog-breed upload, ``dogImages/{train,valid,test}/``.

The dog-breed workflow passes one S3 prefix as one channel (``fit({"training": prefix})``), and
its script reads ``train/``, ``valid/`` and ``test/`` below it. A channel whose top level holds
such split folders is read as those splits: train on the first, validate on the second, and
write the ``Test set:`` line from the third. One wrapper folder above them (``dogImages/``, as
the zip unpacks) is looked through. Split names are never taken as class names: split folders
beside other folders, two folders for one split (``valid`` and ``val``), split folders without
a training one, or a split that also arrives as its own channel fail with the layout named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from train.data.channels import TEST_NAMES, TRAIN_NAMES, VALIDATION_NAMES
from train.errors import UserError

ROLES = {"train": TRAIN_NAMES, "validation": VALIDATION_NAMES, "test": TEST_NAMES}
SPLIT_NAMES = frozenset(name for names in ROLES.values() for name in names)


@dataclass(frozen=True)
class SplitFolders:
    channel: str
    channel_dir: Path
    folders: dict[str, Path]  # role (train, validation, test) -> its folder

    def label(self, role: str) -> str:
        """How logs and errors name a split: ``training/dogImages/valid``."""
        return f"{self.channel}/{self.folders[role].relative_to(self.channel_dir).as_posix()}"

    def describe(self) -> str:
        return ", ".join(f"{role}={self.label(role)}" for role in self.folders)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_split(folder: Path) -> bool:
    return folder.name.lower() in SPLIT_NAMES


def find_split_folders(channel_dir: Path, channel: str) -> SplitFolders | None:
    """The channel's split folders, or None when its top level holds class folders."""
    if not channel_dir.is_dir():
        return None
    root = channel_dir
    top = _subfolders(root)
    if len(top) == 1 and not _is_split(top[0]) and any(map(_is_split, _subfolders(top[0]))):
        root = top[0]  # dogImages/ around train/ valid/ test/
        top = _subfolders(root)
    splits = [p for p in top if _is_split(p)]
    if not splits:
        return None
    where = f"channel {channel!r} ({root})"
    others = [p.name for p in top if not _is_split(p)]
    if others:
        raise UserError(
            f"{where} holds split folders ({', '.join(p.name for p in splits)}) beside other "
            f"folders ({', '.join(others[:5])}): split names are never read as classes, so the "
            "layout is ambiguous. Put only train/, valid/ and test/ at the top (each with one "
            "folder per class), or only class folders; rename a class that is called like a "
            "split"
        )
    folders: dict[str, Path] = {}
    for role, names in ROLES.items():
        found = [p for p in splits if p.name.lower() in names]
        if len(found) > 1:
            raise UserError(
                f"{where} has {len(found)} folders for the {role} split "
                f"({', '.join(p.name for p in found)}); keep one of them"
            )
        if found:
            folders[role] = found[0]
    if "train" not in folders:
        raise UserError(
            f"{where} holds split folders ({', '.join(p.name for p in splits)}) but no training "
            f"split; add a folder named {' or '.join(TRAIN_NAMES)} with one folder per class"
        )
    return SplitFolders(channel, channel_dir, folders)


def check_no_duplicate_split(splits: SplitFolders, role: str, channel: str | None) -> None:
    """A split that arrives both as a folder of the training channel and as its own channel."""
    if channel is not None and role in splits.folders:
        raise UserError(
            f"the {role} data is given twice: as channel {channel!r} and as the folder "
            f"{splits.label(role)} of channel {splits.channel!r}; pass one of them"
        )
