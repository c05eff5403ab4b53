"""The images install from requirements/*.txt; pyproject.toml pins the same top-level versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Lock file -> the pyproject sets containers/lock.py resolves into it.
LOCKS = {
    "core": ("dependencies",),
    "serve": ("serve",),
    "train": ("dependencies", "debug", "export", "train"),
}


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[re.sub(r"\[.*\]", "", name).lower().replace("_", "-")] = version
    return pins


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _declared(project: dict, sets: tuple[str, ...]) -> dict[str, str]:
    return _pins([req for name in sets for req in (
        project["dependencies"] if name == "dependencies"
        else project["optional-dependencies"][name])])


def _locked(name: str) -> dict[str, str]:
    return _pins((REPO / f"requirements/{name}.txt").read_text().splitlines())


def test_image_lock_files_agree_with_pyproject():
    project = _project()
    for lock, sets in LOCKS.items():
        declared, locked = _declared(project, sets), _locked(lock)
        mismatched = {name: (version, locked.get(name)) for name, version in declared.items()
                      if locked.get(name) != version}
        assert not mismatched, f"pyproject {sets} vs requirements/{lock}.txt: {mismatched}"


def test_training_lock_contains_core_lock():
    core, train = _locked("core"), _locked("train")
    mismatched = {name: (version, train.get(name)) for name, version in core.items()
                  if train.get(name) != version}
    assert not mismatched, f"requirements/core.txt vs requirements/train.txt: {mismatched}"


def test_lock_files_agree_where_they_overlap():
    # The training image installs core.txt, serve.txt and train.txt into one environment.
    seen: dict[str, tuple[str, str]] = {}
    conflicts = []
    for lock in LOCKS:
        for name, version in _locked(lock).items():
            first = seen.setdefault(name, (lock, version))
            if first[1] != version:
                conflicts.append(f"{name}: {first[0]}.txt {first[1]}, {lock}.txt {version}")
    assert not conflicts, conflicts


def test_every_dependency_is_pinned():
    project = _project()
    requirements = project["dependencies"] + [
        req for extra in project["optional-dependencies"].values() for req in extra]
    unpinned = [req for req in requirements if "==" not in req]
    assert not unpinned, unpinned


def test_every_extra_pins_one_version_per_package():
    # boto3 sits in two extras; `make setup` installs them together.
    project = _project()
    versions: dict[str, set[str]] = {}
    for extra in [project["dependencies"], *project["optional-dependencies"].values()]:
        for name, version in _pins(extra).items():
            versions.setdefault(name, set()).add(version)
    conflicting = {name: sorted(v) for name, v in versions.items() if len(v) > 1}
    assert not conflicting, conflicting


def test_debug_dependencies_go_in_the_training_image_only():
    stages: dict[str, str] = {}
    current = None
    for line in (REPO / "containers/Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = match.group(1)
        if current:
            stages[current] = stages.get(current, "") + line + "\n"
    assert "requirements/train.txt" in stages["train"]
    assert "smdebug" in stages["train"]
    assert not any("train.txt" in text or "smdebug" in text
                   for name, text in stages.items() if name in ("base", "serve"))
