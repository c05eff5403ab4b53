"""Read the Debugger and Profiler configs SageMaker writes into the container.

``debughookconfig.json`` (``LocalPath``, ``HookParameters``, ``CollectionConfigurations``) is
smdebug's own format and goes to smdebug unchanged but for its output path.
``profilerconfig.json`` (``ProfilingIntervalInMilliseconds``, ``ProfilingParameters`` whose
``DetailedProfilingConfig`` is a *string* like ``{"StartStep": 0, "NumSteps": 10, }`` - the
SageMaker Python SDK writes that trailing comma) is read here and drives
``train.debugger.profiler``. No file, no feature: both return ``None``.
"""

from __future__ import annotations

import ast
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.contract import DEFAULT_PROFILER_DIR, DEFAULT_TENSORS_DIR, TrainingEnv
from train.errors import UserError

log = logging.getLogger(__name__)

# Where the profiler writes, under ProfilingParameters.LocalPath (see train.debugger.profiler).
SYSTEM_DIR = "system/incremental"
FRAMEWORK_DIR = "framework/pytorch"

DEFAULT_MONITOR_INTERVAL_MS = 500  # SageMaker's default system-monitor interval
# SageMaker accepts 100, 200, 500, 1000, 5000 and 60000 ms; anything in between works here.
MIN_MONITOR_INTERVAL_MS = 100


@dataclass(frozen=True)
class HookConfig:
    """A Debugger hook config, with its output path mapped into this job's base dir."""

    source: Path
    out_dir: Path
    raw: dict[str, Any]  # the file's content, LocalPath rewritten to out_dir

    def collection_names(self) -> list[str]:
        return [c.get("CollectionName", "") for c in self.raw.get("CollectionConfigurations")
                or []]


@dataclass(frozen=True)
class StepWindow:
    start_step: int
    num_steps: int

    def contains(self, step: int) -> bool:
        return self.start_step <= step < self.start_step + self.num_steps


@dataclass(frozen=True)
class ProfilerSettings:
    source: Path
    out_dir: Path
    monitor_interval_ms: int
    framework: StepWindow | None  # None: system metrics only


def load_hook_config(env: TrainingEnv) -> HookConfig | None:
    path = env.debughook_config_path()
    raw = _read_object(path)
    if raw is None:
        return None
    out_dir = env.resolve_container_path(raw.get("LocalPath") or "/opt/ml/" +
                                         DEFAULT_TENSORS_DIR)
    collections = raw.get("CollectionConfigurations") or []
    if not isinstance(collections, list) or not all(
            isinstance(c, dict) and c.get("CollectionName") for c in collections):
        raise UserError(f"{path}: CollectionConfigurations must be a list of objects with a "
                        "CollectionName; fix the DebuggerHookConfig's collection_configs")
    if not isinstance(raw.get("HookParameters") or {}, dict):
        raise UserError(f"{path}: HookParameters must be an object of name: value")
    return HookConfig(source=path, out_dir=out_dir, raw=raw | {"LocalPath": str(out_dir)})


def load_profiler_settings(env: TrainingEnv) -> ProfilerSettings | None:
    path = env.profiler_config_path
    raw = _read_object(path)
    if raw is None or _truthy(raw.get("DisableProfiler")):
        return None
    interval = _positive_int(raw.get("ProfilingIntervalInMilliseconds",
                                     DEFAULT_MONITOR_INTERVAL_MS),
                             path, "ProfilingIntervalInMilliseconds")
    if interval < MIN_MONITOR_INTERVAL_MS:
        raise UserError(f"{path}: ProfilingIntervalInMilliseconds={interval} is below "
                        f"{MIN_MONITOR_INTERVAL_MS}; use 100, 200, 500, 1000, 5000 or 60000")
    params = raw.get("ProfilingParameters") or {}
    if not isinstance(params, dict):
        raise UserError(f"{path}: ProfilingParameters must be an object")
    out_dir = env.resolve_container_path(params.get("LocalPath") or "/opt/ml/" +
                                         DEFAULT_PROFILER_DIR)
    detailed = _embedded_object(params.get("DetailedProfilingConfig"), path,
                                "DetailedProfilingConfig")
    framework = None
    if detailed is not None:
        if "StartTimeInSecSinceEpoch" in detailed and "StartStep" not in detailed:
            log.warning("profiler: a time-based DetailedProfilingConfig is not supported; "
                        "profiling steps 0-9 instead (set start_step/num_steps)")
        framework = StepWindow(
            start_step=_non_negative_int(detailed.get("StartStep", 0), path, "StartStep"),
            num_steps=_positive_int(detailed.get("NumSteps", 1), path, "NumSteps"),
        )
    return ProfilerSettings(source=path, out_dir=out_dir, monitor_interval_ms=interval,
                            framework=framework)


def _read_object(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); fix or remove the file") from exc
    if not isinstance(raw, dict):
        raise UserError(f"{path} must hold a JSON object")
    return raw


def _embedded_object(value: Any, path: Path, key: str) -> dict[str, Any] | None:
    """SageMaker passes these sub-configs as strings, not always valid JSON."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(value)
            except (ValueError, SyntaxError):
                continue
            if isinstance(parsed, dict):
                return parsed
    raise UserError(f"{path}: {key} must be an object like {{\"StartStep\": 5, \"NumSteps\": "
                    f"10}}, got {value!r}")


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _positive_int(value: Any, path: Path, key: str) -> int:
    number = _non_negative_int(value, path, key)
    if number == 0:
        raise UserError(f"{path}: {key} must be a positive integer, got {value!r}")
    return number


def _non_negative_int(value: Any, path: Path, key: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if number < 0:
        raise UserError(f"{path}: {key} must be a non-negative integer, got {value!r}")
    return number
