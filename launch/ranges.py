"""Hyperparameter ranges, with SageMaker's types and scalings, for cloud and local tuning.

Flags: ``--range lr=continuous:0.001:0.1[:log]``, ``--range num_layers=integer:18:50``,
``--range batch-size=categorical:32,64,128``. Scalings: ``auto`` (linear, locally), ``linear``,
``log`` (Logarithmic), ``reverse-log`` (ReverseLogarithmic: fine steps near the top of a range
inside [0, 1)). A file holds the same as JSON: ``{"lr": {"type": "continuous", "min": 0.001,
"max": 0.1, "scaling": "log"}, "batch-size": {"type": "categorical", "values": [32, 64]}}``.

Local search works on each range mapped to [0, 1] (``to_unit``/``from_unit``) the way
SageMaker's scalings map them: uniform in the value, its log, or the log of ``1 - value``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagemaker.parameter import ParameterRange

KINDS = ("continuous", "integer", "categorical")
SCALINGS = {"auto": "Auto", "linear": "Linear", "log": "Logarithmic",
            "reverse-log": "ReverseLogarithmic"}
# Files may also use SageMaker's own spelling of a scaling.
SCALING_ALIASES = {v.lower(): k for k, v in SCALINGS.items()}


@dataclass(frozen=True)
class Range:
    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    values: tuple[str, ...] = ()
    scaling: str = "auto"

    def __post_init__(self) -> None:
        where = f"range {self.name!r}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: type {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"{where}: scaling {self.scaling!r} is not one of "
                             f"{', '.join(SCALINGS)}")
        if self.kind == "categorical":
            if not self.values:
                raise ValueError(f"{where}: give at least one categorical value")
            return
        if not self.low < self.high:
            raise ValueError(f"{where}: min {self.low} must be below max {self.high}")
        if self.scaling == "log" and self.low <= 0:
            raise ValueError(f"{where}: logarithmic scaling needs min > 0")
        if self.scaling == "reverse-log" and not (
                self.kind == "continuous" and self.low >= 0 and self.high < 1):
            raise ValueError(f"{where}: reverse-log scaling needs a continuous range with "
                             "0 <= min and max < 1")

    # Mapping to [0, 1] -----------------------------------------------------------------
    def from_unit(self, u: float) -> str:
        """The hyperparameter value (as SageMaker's string) at position ``u`` in [0, 1]."""
        u = min(max(u, 0.0), 1.0)
        if self.kind == "categorical":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.kind == "integer":
            # Widened by half a step, so each integer owns its share of [0, 1].
            value = _unscale(u, self.low - 0.5, self.high + 0.5, self.scaling)
            return str(int(min(max(round(value), self.low), self.high)))
        return f"{_unscale(u, self.low, self.high, self.scaling):.6g}"

    def to_unit(self, value: str) -> float:
        if self.kind == "categorical":
            return (self.values.index(value) + 0.5) / len(self.values)
        if self.kind == "integer":
            return _scale(float(value), self.low - 0.5, self.high + 0.5, self.scaling)
        return _scale(float(value), self.low, self.high, self.scaling)

    # SageMaker -------------------------------------------------------------------------
    def to_sdk(self) -> ParameterRange:
        from sagemaker.parameter import (
            CategoricalParameter,
            ContinuousParameter,
            IntegerParameter,
        )

        if self.kind == "categorical":
            return CategoricalParameter(list(self.values))
        cls = ContinuousParameter if self.kind == "continuous" else IntegerParameter
        low, high = (self.low, self.high) if self.kind == "continuous" else (
            int(self.low), int(self.high))
        return cls(low, high, scaling_type=SCALINGS[self.scaling])


def _scale(x: float, low: float, high: float, scaling: str) -> float:
    if scaling == "log":
        return (math.log(x) - math.log(low)) / (math.log(high) - math.log(low))
    if scaling == "reverse-log":
        return (math.log(1 - low) - math.log(1 - x)) / (math.log(1 - low) - math.log(1 - high))
    return (x - low) / (high - low)


def _unscale(u: float, low: float, high: float, scaling: str) -> float:
    if scaling == "log":
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    if scaling == "reverse-log":
        return 1 - math.exp(math.log(1 - low) - u * (math.log(1 - low) - math.log(1 - high)))
    return low + u * (high - low)


# The seed's tuning job: learning rate 0.001-0.1, batch size 32-512 in powers of two.
DEFAULT_RANGES = (
    Range("lr", "continuous", 0.001, 0.1),
    Range("batch-size", "categorical", values=("32", "64", "128", "256", "512")),
)


def parse_flag(text: str) -> Range:
    """``name=continuous:0.001:0.1[:log]`` / ``name=integer:1:10`` / ``name=categorical:a,b``."""
    name, sep, spec = text.partition("=")
    kind, _, rest = spec.partition(":")
    if not (name and sep and rest):
        raise ValueError(f"--range {text!r} must look like lr=continuous:0.001:0.1[:log], "
                         "epochs=integer:5:20 or batch-size=categorical:32,64,128")
    if kind == "categorical":
        return Range(name, kind, values=tuple(v for v in rest.split(",") if v))
    parts = rest.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"--range {text!r}: give MIN:MAX[:SCALING]")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"--range {text!r}: MIN and MAX must be numbers") from None
    return Range(name, kind, low, high, scaling=parts[2] if len(parts) == 3 else "auto")


def load_file(path: Path) -> list[Range]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object of name: range")
    return [_from_json(name, spec, path) for name, spec in data.items()]


def _from_json(name: str, spec: Any, path: Path) -> Range:
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{path}: range {name!r} needs a 'type' ({', '.join(KINDS)})")
    kind = str(spec["type"]).lower()
    scaling = str(spec.get("scaling", "auto")).lower()
    scaling = SCALING_ALIASES.get(scaling, scaling)
    if kind == "categorical":
        return Range(name, kind, values=tuple(str(v) for v in spec.get("values", ())),
                     scaling=scaling)
    try:
        low, high = float(spec["min"]), float(spec["max"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: range {name!r} needs numeric 'min' and 'max'") from None
    return Range(name, kind, low, high, scaling=scaling)


def ranges_from(flags: list[str], file: Path | None) -> list[Range]:
    """Flags win over the file; neither means the seed's ranges."""
    by_name: dict[str, Range] = {}
    if file is not None:
        by_name.update((r.name, r) for r in load_file(file))
    by_name.update((r.name, r) for r in map(parse_flag, flags))
    return list(by_name.values()) or list(DEFAULT_RANGES)
