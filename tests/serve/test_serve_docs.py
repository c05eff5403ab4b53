"""The README's Serving section names every content type and environment variable served."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve import contract
from serve.decoders import DECODERS
from serve.encoders import ENCODERS

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def serving_section() -> str:
    text = README.read_text()
    if "## Serving" not in text:
        pytest.skip("README.md has no '## Serving' section yet")
    section = text.split("## Serving", 1)[1]
    return section.split("\n## ", 1)[0]


def test_every_content_type_is_documented(serving_section):
    missing = [ct for ct in {*DECODERS, *ENCODERS} if f"`{ct}" not in serving_section]
    assert not missing, f"the Serving section lacks {missing}"


def test_every_environment_variable_is_documented(serving_section):
    names = [
        value
        for key, value in vars(contract).items()
        if key.startswith("ENV_") and key != "ENV_WORKER_ORDINAL"
    ]
    missing = [name for name in names if f"`{name}`" not in serving_section]
    assert not missing, f"the Serving section lacks {missing}"
