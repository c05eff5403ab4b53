"""The README is the user's reference: it must list every hyperparameter and metric regex."""

from __future__ import annotations

from pathlib import Path

from train.hyperparameters import describe
from train.metric_definitions import METRIC_DEFINITIONS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_hyperparameter_is_documented():
    missing = [row["name"] for row in describe() if f"| `{row['name']}`" not in README]
    assert not missing, f"README's hyperparameter table lacks {missing}"


def test_metric_definitions_in_readme_match_the_code():
    for definition in METRIC_DEFINITIONS:
        line = f'{{"Name": "{definition["Name"]}", "Regex": r"{definition["Regex"]}"}}'
        assert line in README, line
