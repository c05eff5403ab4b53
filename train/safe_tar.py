"""Reading files out of an untrusted tarball (a previous job's ``model.tar.gz``).

Every member is checked before anything is read, and the archive is refused as a whole when
one member is hostile: an absolute path, a ``..`` component, a link whose target is absolute or
leaves the archive's root, a device, FIFO or other special file, more than ``MAX_MEMBERS``
members, or declared sizes adding up to more than ``max_bytes``. Wanted files are then read
into memory; nothing is ever extracted to disk, so no member can land anywhere, and nothing is
unpickled (the caller parses JSON and safetensors).
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from train.errors import UserError

MAX_MEMBERS = 10_000
GIB = 1 << 30


def _normalized(name: str) -> str:
    return PurePosixPath(name).as_posix().removeprefix("./")


def _problem(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` may not be in the archive, or None."""
    name = member.name
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("\\") or ":" in name.split("/")[0]:
        return "is an absolute path"
    if ".." in path.parts:
        return "contains '..'"
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        base = path.parent if member.issym() else PurePosixPath()
        if target.is_absolute():
            return f"is a link to the absolute path {member.linkname!r}"
        depth = 0
        for part in (*base.parts, *target.parts):
            depth = depth - 1 if part == ".." else depth + (part not in ("", "."))
            if depth < 0:
                return f"is a link to {member.linkname!r}, outside the archive"
        return None
    if not (member.isfile() or member.isdir()):
        return "is a device, FIFO or other special file"
    return None


def read_files(archive: Path, wanted: tuple[str, ...], *, max_bytes: int, what: str
               ) -> dict[str, bytes]:
    """The ``wanted`` regular files of ``archive`` (by name, ``./`` ignored), after checking
    every member; a wanted file that is absent is simply not in the result."""
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UserError(f"{what} {archive.name} is not a readable tar archive ({exc}); pass the "
                        "model.tar.gz a training job wrote, or its extracted files") from None
    with tar:
        total = 0
        members: dict[str, tarfile.TarInfo] = {}
        try:
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise UserError(f"{what} {archive.name} has more than {MAX_MEMBERS} "
                                    "members; a model artifact has a handful")
                problem = _problem(member)
                if problem:
                    raise UserError(f"{what} {archive.name} is refused: member {member.name!r} "
                                    f"{problem}. Nothing was extracted; pass the model.tar.gz "
                                    "a training job wrote")
                total += max(member.size, 0)
                if total > max_bytes:
                    raise UserError(f"{what} {archive.name} is refused: its members add up to "
                                    f"more than {max_bytes / GIB:.2f} GiB, more than any model "
                                    "artifact this image reads")
                members[_normalized(member.name)] = member
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise UserError(f"{what} {archive.name} is damaged ({exc}); upload it again"
                            ) from None
        found: dict[str, bytes] = {}
        for name in wanted:
            member = members.get(name)
            if member is None:
                continue
            if not member.isfile():
                raise UserError(f"{what} {archive.name}: {name} is not a regular file")
            handle = tar.extractfile(member)
            assert handle is not None
            found[name] = handle.read()
        return found
