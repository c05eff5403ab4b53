"""The images install from requirements/*.txt; pyproject.toml pins the same top-level versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[re.sub(r"\[.*\]", "", name).lower().replace("_", "-")] = version
    return pins


def test_image_lock_files_agree_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = _pins(project["dependencies"] + project["optional-dependencies"]["serve"])
    locked = _pins((REPO / "requirements/core.txt").read_text().splitlines()
                   + (REPO / "requirements/serve.txt").read_text().splitlines())
    mismatched = {name: (version, locked.get(name)) for name, version in declared.items()
                  if locked.get(name) != version}
    assert not mismatched, f"pyproject vs requirements/*.txt: {mismatched}"


def test_every_dependency_is_pinned():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        req for extra in project["optional-dependencies"].values() for req in extra]
    unpinned = [req for req in requirements if "==" not in req]
    assert not unpinned, unpinned
