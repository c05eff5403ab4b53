"""Writing a bench's results: ``<name>.json`` (everything measured) and ``<name>.md`` (the
tables), both under bench/results/ unless the bench was told otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def save(result: dict, out: Path, markdown: Callable[[dict], str]) -> None:
    """``out``.json (everything) and ``out``.md (the table), and the table on stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(result)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(text)
    print(text)
