"""The SageMaker training contract: every path, file name and environment variable in one place.

All paths derive from one base directory, ``SAGEMAKER_BASE_DIR`` (default ``/opt/ml``), so the
same code runs in a SageMaker job, under ``docker run -v tree:/opt/ml`` and as a local process.
``TrainingEnv.from_base_dir`` reads the config files once; nothing here runs at import time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.errors import UserError

BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
DEFAULT_BASE_DIR = "/opt/ml"
# SageMaker sets this when a Debugger hook config is written elsewhere.
SMDEBUG_CONFIG_ENV = "SMDEBUG_CONFIG_FILE_PATH"
# Set by SageMaker in every training container.
JOB_NAME_ENV = "TRAINING_JOB_NAME"
# A hyperparameter SageMaker adds to every trial of a tuning job.
TUNING_OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"

HYPERPARAMETERS_FILE = "input/config/hyperparameters.json"
INPUT_DATA_CONFIG_FILE = "input/config/inputdataconfig.json"
RESOURCE_CONFIG_FILE = "input/config/resourceconfig.json"
# Written by SageMaker only when the job configures Debugger / Profiler.
DEBUGHOOK_CONFIG_FILE = "input/config/debughookconfig.json"
PROFILER_CONFIG_FILE = "input/config/profilerconfig.json"
DEFAULT_TENSORS_DIR = "output/tensors"
DEFAULT_PROFILER_DIR = "output/profiler"
DATA_DIR = "input/data"
MODEL_DIR = "model"
OUTPUT_DIR = "output"
OUTPUT_DATA_DIR = "output/data"
CHECKPOINT_DIR = "checkpoints"
FAILURE_FILE = "output/failure"
SUCCESS_FILE = "output/success"

# The keys SageMaker writes for each channel in inputdataconfig.json, and no others: no
# AttributeNames, no S3DataType. Nothing may depend on a key SageMaker never sends; our own
# tools may add AttributeNames (OWN_TOOLS_CHANNEL_KEYS), which is read but never required.
SAGEMAKER_CHANNEL_KEYS = frozenset(
    {"ContentType", "TrainingInputMode", "S3DistributionType", "RecordWrapperType"}
)
OWN_TOOLS_CHANNEL_KEYS = frozenset({"AttributeNames"})

INPUT_MODE_FILE = "File"
INPUT_MODE_PIPE = "Pipe"
INPUT_MODE_FASTFILE = "FastFile"
# A channel's RecordWrapperType that frames every record (augmented manifests in Pipe mode).
RECORD_WRAPPER_RECORDIO = "RecordIO"
DISTRIBUTION_FULLY_REPLICATED = "FullyReplicated"
DISTRIBUTION_SHARDED = "ShardedByS3Key"
# Incremental training: the built-ins' `model` channel holds a previous job's model.tar.gz.
MODEL_CHANNEL = "model"
MODEL_CONTENT_TYPE = "application/x-sagemaker-model"

# SageMaker copies the first 1024 characters of output/failure into FailureReason.
FAILURE_REASON_CHARS = 1024


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    content_type: str | None
    input_mode: str
    record_wrapper_type: str | None = None
    distribution: str = DISTRIBUTION_FULLY_REPLICATED
    attribute_names: tuple[str, ...] = ()  # our own tools only; SageMaker never writes it


@dataclass(frozen=True)
class ResourceConfig:
    current_host: str = "algo-1"
    hosts: tuple[str, ...] = ("algo-1",)
    network_interface_name: str | None = None


@dataclass(frozen=True)
class TrainingEnv:
    """A read-only snapshot of what SageMaker handed the container."""

    base_dir: Path
    hyperparameters: dict[str, str] = field(default_factory=dict)
    channels: dict[str, ChannelConfig] = field(default_factory=dict)
    resources: ResourceConfig = field(default_factory=ResourceConfig)
    job_name: str | None = None

    @classmethod
    def from_environ(cls) -> TrainingEnv:
        return cls.from_base_dir(base_dir_from_environ())

    @classmethod
    def from_base_dir(cls, base_dir: Path) -> TrainingEnv:
        base_dir = Path(base_dir)
        raw_hps = _read_json(base_dir / HYPERPARAMETERS_FILE, default={})
        if not isinstance(raw_hps, dict):
            raise UserError(f"{HYPERPARAMETERS_FILE} must hold a JSON object of name: value")
        raw_channels = _read_json(base_dir / INPUT_DATA_CONFIG_FILE, default={})
        if not isinstance(raw_channels, dict):
            raise UserError(f"{INPUT_DATA_CONFIG_FILE} must hold a JSON object of channels")
        raw_resources = _read_json(base_dir / RESOURCE_CONFIG_FILE, default={})
        return cls(
            base_dir=base_dir,
            hyperparameters={str(k): _as_string(v) for k, v in raw_hps.items()},
            channels={name: _channel(name, cfg) for name, cfg in raw_channels.items()},
            resources=_resources(raw_resources),
            job_name=os.environ.get(JOB_NAME_ENV) or None,
        )

    # Paths -------------------------------------------------------------------------------
    def path(self, relative: str) -> Path:
        return self.base_dir / relative

    def channel_dir(self, channel: str) -> Path:
        return self.base_dir / DATA_DIR / channel

    @property
    def model_dir(self) -> Path:
        return self.path(MODEL_DIR)

    @property
    def output_data_dir(self) -> Path:
        return self.path(OUTPUT_DATA_DIR)

    @property
    def checkpoint_dir(self) -> Path:
        """``/opt/ml/checkpoints``; for a trial of a tuning job, its own folder in it: the
        trials of one tuning job share one checkpoint location, and a trial must never resume
        another's checkpoint."""
        if self.job_name and TUNING_OBJECTIVE_HYPERPARAMETER in self.hyperparameters:
            return self.path(CHECKPOINT_DIR) / self.job_name
        return self.path(CHECKPOINT_DIR)

    def debughook_config_path(self) -> Path:
        """SMDEBUG_CONFIG_FILE_PATH when set (SageMaker sets it), else the standard place."""
        override = os.environ.get(SMDEBUG_CONFIG_ENV)
        return Path(override) if override else self.path(DEBUGHOOK_CONFIG_FILE)

    @property
    def profiler_config_path(self) -> Path:
        return self.path(PROFILER_CONFIG_FILE)

    def resolve_container_path(self, path: str) -> Path:
        """Map a path SageMaker wrote for the container (``/opt/ml/...``) into this base dir,
        so a config written for SageMaker also works under ``SAGEMAKER_BASE_DIR``."""
        container = Path(path)
        if container.is_relative_to(DEFAULT_BASE_DIR):
            return self.base_dir / container.relative_to(DEFAULT_BASE_DIR)
        return container

    def available_channels(self) -> list[str]:
        """Channels declared in inputdataconfig.json, else the folders under input/data."""
        if self.channels:
            return sorted(self.channels)
        data_dir = self.base_dir / DATA_DIR
        if not data_dir.is_dir():
            return []
        return sorted(p.name for p in data_dir.iterdir() if p.is_dir())

    def input_mode(self, channel: str) -> str:
        cfg = self.channels.get(channel)
        return cfg.input_mode if cfg else INPUT_MODE_FILE

    def channel_distribution(self, channel: str) -> str:
        cfg = self.channels.get(channel)
        return cfg.distribution if cfg else DISTRIBUTION_FULLY_REPLICATED

    def content_type(self, channel: str) -> str | None:
        cfg = self.channels.get(channel)
        return cfg.content_type if cfg else None

    # Outcome files -----------------------------------------------------------------------
    def clear_outcome(self) -> None:
        """Remove a previous run's success/failure file (a resumed job reuses the tree), so
        that the tree ends with exactly one outcome: this run's."""
        for name in (SUCCESS_FILE, FAILURE_FILE):
            self.path(name).unlink(missing_ok=True)

    def write_success(self) -> None:
        path = self.path(SUCCESS_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def write_failure(self, message: str) -> None:
        """Write the reason; the first line and first 1024 characters are what users see."""
        path = self.path(FAILURE_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message if message.endswith("\n") else message + "\n")


def base_dir_from_environ() -> Path:
    return Path(os.environ.get(BASE_DIR_ENV, DEFAULT_BASE_DIR))


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); fix or remove the file") from exc


def _as_string(value: Any) -> str:
    # SageMaker always writes strings; local users may write numbers or booleans.
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _channel(name: str, cfg: Any) -> ChannelConfig:
    if not isinstance(cfg, dict):
        raise UserError(f"{INPUT_DATA_CONFIG_FILE}: channel {name!r} must be a JSON object")
    return ChannelConfig(
        name=name,
        content_type=cfg.get("ContentType"),
        input_mode=cfg.get("TrainingInputMode", INPUT_MODE_FILE),
        record_wrapper_type=cfg.get("RecordWrapperType"),
        distribution=cfg.get("S3DistributionType") or DISTRIBUTION_FULLY_REPLICATED,
        attribute_names=tuple(cfg.get("AttributeNames", ()) or ()),
    )


def _resources(raw: Any) -> ResourceConfig:
    if not isinstance(raw, dict) or not raw:
        return ResourceConfig()
    hosts = tuple(raw.get("hosts") or ("algo-1",))
    return ResourceConfig(
        current_host=str(raw.get("current_host", hosts[0])),
        hosts=hosts,
        network_interface_name=raw.get("network_interface_name"),
    )
