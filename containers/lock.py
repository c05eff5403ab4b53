#!/usr/bin/env python3
"""Regenerate requirements/{core,serve,train}.txt from pyproject.toml's pins.

pip resolves each set (``pip install --dry-run --report``) for this Python and platform and
the files list every package with its exact version: the images install exactly these.
train.txt is core plus the debug and train extras resolved together (the training image installs it
over core.txt and serve.txt); tests/test_pins.py checks the files agree where they overlap.

    make lock
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADERS = {
    "core": "# Fully pinned runtime dependencies of both images (torch's CUDA 13.0 wheels and "
            "their\n# nvidia-* libraries). pyproject.toml pins the top-level names; "
            "tests/test_pins.py checks they agree.\n# Regenerate: make lock\n",
    "serve": "# Fully pinned model-server dependencies (the serve extra): the whole CPU serving\n"
             "# image (no torch), and the server part of the torch images. Regenerate: make lock\n",
    "train": "# Fully pinned dependencies of the training image: core plus the debug extra\n"
             "# (smdebug, profiler, report), the export extra (onnx) and the train extra (JPEG\n"
             "# decoding), resolved together; installed over core.txt and serve.txt. Regenerate:\n"
             "# make lock\n",
}


def resolve(requirements: list[str]) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                        "--ignore-installed", "--report", str(report), *requirements],
                       check=True)
        installs = json.loads(report.read_text())["install"]
    return sorted((f"{i['metadata']['name'].lower()}=={i['metadata']['version']}"
                   for i in installs), key=str.lower)


def main() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    sets = {"core": project["dependencies"], "serve": extras["serve"],
            "train": project["dependencies"] + extras["debug"] + extras["export"]
            + extras["train"]}
    for name, requirements in sets.items():
        path = REPO / "requirements" / f"{name}.txt"
        path.write_text(HEADERS[name] + "\n".join(resolve(requirements)) + "\n")
        print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
