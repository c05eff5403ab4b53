"""Map a manifest's ``source-ref`` (an S3 URI) to a file in a local folder (File mode).

SageMaker copies an S3 prefix into a channel folder keeping each object's key below the prefix,
so ``s3://bucket/photos/cats/1.jpg`` copied from ``s3://bucket/photos/`` lands at
``<folder>/cats/1.jpg``. Two ways to find it:

* ``prefix`` given (hyperparameter ``source_ref_prefix``, e.g. ``s3://bucket/photos/``): the
  key below the prefix is the relative path, exactly.
* otherwise: the longest tail of ``bucket/key`` that names a file in the folder wins
  (``bucket/photos/cats/1.jpg``, then ``photos/cats/1.jpg``, ``cats/1.jpg``, ``1.jpg``).

Only files inside the folder are ever considered: the folder is listed once and references are
looked up in that listing, so ``..`` or an absolute path can never reach outside it (both are
refused outright anyway).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from train.errors import UserError


def reference_parts(ref: object, where: str) -> list[str]:
    """``bucket/key`` path segments of an ``s3://`` URI or a relative path; refuses others."""
    if not isinstance(ref, str) or not ref.strip():
        raise UserError(f"{where}: the image reference {ref!r} is not an S3 URI or a path")
    ref = ref.strip()
    if "://" in ref:
        parts = urlsplit(ref)
        if parts.scheme != "s3":
            raise UserError(f"{where}: image reference {ref!r} is not an s3:// URI; only S3 "
                            "objects (or paths relative to the images folder) can be used")
        segments = [parts.netloc, *parts.path.split("/")]
    else:
        if ref.startswith(("/", "\\")) or PurePosixPath(ref).is_absolute() or ":" in ref[:3]:
            raise UserError(f"{where}: image reference {ref!r} is an absolute path; use a "
                            "path relative to the images folder (absolute paths are refused)")
        segments = ref.replace("\\", "/").split("/")
    if ".." in segments:
        raise UserError(f"{where}: image reference {ref!r} contains '..'; path traversal is "
                        "refused, use a path inside the images folder")
    segments = [s for s in segments if s not in ("", ".")]
    if not segments:
        raise UserError(f"{where}: the image reference {ref!r} names no file")
    return segments


class SourceResolver:
    """Find manifest images in ``root`` (listed once, recursively)."""

    def __init__(self, root: Path, prefix: str | None = None) -> None:
        self.root = root
        self.prefix = prefix.rstrip("/") + "/" if prefix else None
        self._files = {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        } if root.is_dir() else set()

    def resolve(self, ref: str, where: str) -> str | None:
        """The path relative to ``root`` of ``ref``'s file, or None if it is not there."""
        segments = reference_parts(ref, where)
        if self.prefix is not None:
            full = ref.strip()
            if not full.startswith(self.prefix):
                raise UserError(f"{where}: image reference {full!r} does not start with "
                                f"source_ref_prefix={self.prefix!r}; fix the manifest or the "
                                "hyperparameter")
            relative = full[len(self.prefix):]
            reference_parts(relative, where)  # no traversal below the prefix either
            return relative if relative in self._files else None
        for start in range(len(segments)):
            candidate = "/".join(segments[start:])
            if candidate in self._files:
                return candidate
        return None
