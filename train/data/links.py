"""Symbolic links in the input tree: nothing outside ``<base>/input`` is ever read.

SageMaker never creates links (File mode copies S3 objects, FastFile mounts them), so a link in
``input/data`` comes from a local setup or from a packed data set. One that resolves outside
the input tree (``/opt/ml/input``) would let a channel read any file of the host (``/etc``, a
neighbour's data, the credentials of the user running the job): the job refuses it, naming the
link and its target, before any data is read. Links that stay inside the input tree are fine.
"""

from __future__ import annotations

import os
from pathlib import Path

from train.contract import DATA_DIR, TrainingEnv
from train.errors import UserError

SHOWN = 3


def outside_links(data_dir: Path, root: Path) -> list[tuple[Path, Path]]:
    """``(link, target)`` for every link below ``data_dir`` (and ``data_dir`` itself) that
    resolves outside ``root``. Walks without following links."""
    found: list[tuple[Path, Path]] = []
    root = root.resolve()

    def visit(path: Path) -> None:
        target = path.resolve()
        if not target.is_relative_to(root):
            found.append((path, target))

    if data_dir.is_symlink():
        visit(data_dir)
        return found
    stack = [data_dir]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_symlink():
                visit(Path(entry.path))
            elif entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return found


def check_input_links(env: TrainingEnv) -> None:
    input_root = env.base_dir / "input"
    found = outside_links(env.path(DATA_DIR), input_root)
    if not found:
        return
    shown = "; ".join(f"{link} -> {target}" for link, target in sorted(found)[:SHOWN])
    more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
    raise UserError(
        f"{len(found)} symbolic link(s) in the input data point outside {input_root}: "
        f"{shown}{more}. A job reads only its own input tree; copy the data in (cp -r, or "
        "cp -al to hard-link it on the same file system), or mount it there (docker run "
        "-v DATA:/opt/ml/input/data/CHANNEL)"
    )
