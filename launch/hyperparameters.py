"""Hyperparameters from ``--hp name=value`` flags and/or a JSON file, as SageMaker's strings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from launch.cli import key_value


def add_hyperparameter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hyperparameters")
    group.add_argument("--hp", action="append", type=key_value, default=[], metavar="NAME=VALUE",
                       help="a hyperparameter, e.g. num_layers=18 (repeatable; wins over "
                       "--hp-file)")
    group.add_argument("--hp-file", type=Path, metavar="JSON",
                       help='a JSON object of hyperparameters, e.g. {"epochs": 10}')


def hyperparameters_from_args(args: argparse.Namespace) -> dict[str, str]:
    values: dict[str, str] = {}
    if args.hp_file is not None:
        loaded = json.loads(args.hp_file.read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.hp_file} must hold a JSON object of name: value")
        values.update({str(k): as_string(v) for k, v in loaded.items()})
    values.update(dict(args.hp))
    return values


def as_string(value: Any) -> str:
    """SageMaker passes hyperparameters as strings; numbers and booleans keep their JSON form."""
    return value if isinstance(value, str) else json.dumps(value)


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().strip('"').lower() in ("1", "true", "yes")
