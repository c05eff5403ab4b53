#!/usr/bin/env python3
"""Link the wheels that requirements/*.txt pin, where they lie on this machine's disk.

CI serves the folder over HTTP on 127.0.0.1 and passes it to `docker build` as
PIP_FIND_LINKS, so the image build takes torch and its CUDA libraries (gigabytes) from local
disk instead of downloading them. Pins with no local wheel are left to the package index.

    python3 .ci/local_wheels.py OUT_DIR requirements/core.txt requirements/serve.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SEARCH = [Path("/opt/pypi/files"), Path("/opt/pypi-more/files"), Path("/opt/wheels")]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def main(out: Path, requirement_files: list[Path]) -> None:
    pins = {}
    for req in requirement_files:
        for line in req.read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==")
                pins[normalize(name)] = version
    out.mkdir(parents=True, exist_ok=True)
    found = 0
    for folder in SEARCH:
        if not folder.is_dir():
            continue
        for wheel in folder.glob("*.whl"):
            name, version = wheel.name.split("-")[:2]
            # "2.14.1+cu130" style local versions satisfy "2.14.1" pins.
            if pins.get(normalize(name)) == version.split("+")[0]:
                target = out / wheel.name
                if not target.exists():
                    target.symlink_to(wheel)
                    found += 1
    print(f"{found} of {len(pins)} pinned wheels found on local disk, linked into {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
