"""Training channels from the command line: ``--channel NAME=URI`` plus how SageMaker delivers them.

``--data-format`` fills in what each of the image's input formats needs (content type, input
mode, S3 data type, record wrapping); the other flags override it for every channel, and
``--channel-config NAME:KEY=VALUE`` for one channel (e.g. ``weights:input_mode=File`` beside
Pipe-mode manifests). A channel named ``model`` (or ``--model-data``) is incremental training's
previous model, sent as the built-in algorithms' notebooks send it. The same specs serve
SageMaker (``TrainingInput``) and local trials (``inputdataconfig.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from launch.cli import key_value

if TYPE_CHECKING:
    from sagemaker.inputs import TrainingInput

INPUT_MODES = ("File", "FastFile", "Pipe")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
S3_DATA_TYPES = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
RECORD_WRAPPINGS = ("None", "RecordIO")
CT_IMAGE = "application/x-image"
CT_RECORDIO = "application/x-recordio"
# Incremental training: the previous job's model.tar.gz, as the built-in algorithms take it.
MODEL_CHANNEL = "model"
CT_MODEL = "application/x-sagemaker-model"
MODEL_SETTINGS: dict[str, Any] = {"content_type": CT_MODEL, "s3_data_type": "S3Prefix",
                                  "distribution": "FullyReplicated", "record_wrapping": None,
                                  "attribute_names": ()}

# The image's input formats (README "Channels and data layout") and what SageMaker must send.
DATA_FORMATS: dict[str, dict[str, Any]] = {
    "folder": {"content_type": CT_IMAGE},
    "lst": {"content_type": CT_IMAGE},
    "recordio": {"content_type": CT_RECORDIO},
    "manifest": {"content_type": CT_RECORDIO, "input_mode": "Pipe",
                 "s3_data_type": "AugmentedManifestFile", "record_wrapping": "RecordIO"},
}


@dataclass(frozen=True)
class Channel:
    name: str
    source: str  # s3://bucket/prefix (SageMaker) or a local folder (local tuning)
    content_type: str | None = None
    input_mode: str | None = None  # None: the estimator's input mode
    distribution: str = "FullyReplicated"
    s3_data_type: str = "S3Prefix"
    record_wrapping: str | None = None
    attribute_names: tuple[str, ...] = ()

    def to_training_input(self) -> TrainingInput:
        from sagemaker.inputs import TrainingInput

        return TrainingInput(
            self.source,
            distribution=self.distribution,
            content_type=self.content_type,
            record_wrapping=self.record_wrapping,
            s3_data_type=self.s3_data_type,
            input_mode=self.input_mode,
            attribute_names=list(self.attribute_names) or None,
        )

    def to_input_data_config(self) -> dict[str, Any]:
        """This channel's entry in ``inputdataconfig.json``, as SageMaker writes it: these four
        keys only (no AttributeNames, no S3DataType, whatever the request held)."""
        entry: dict[str, Any] = {
            "TrainingInputMode": self.input_mode or "File",
            "S3DistributionType": self.distribution,
            "RecordWrapperType": self.record_wrapping or "None",
        }
        if self.content_type:
            entry["ContentType"] = self.content_type
        return entry


def add_channel_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    group = parser.add_argument_group("channels")
    group.add_argument("--channel", action="append", type=key_value, default=[],
                       required=required, metavar="NAME=URI",
                       help="a channel, e.g. train=s3://bucket/train/ (repeatable)")
    group.add_argument("--data-format", choices=sorted(DATA_FORMATS),
                       help="fill in content type, input mode and S3 data type for this input "
                       "format (manifest: Pipe, AugmentedManifestFile, RecordIO)")
    group.add_argument("--content-type", help="ContentType of every channel")
    group.add_argument("--input-mode", choices=INPUT_MODES, help="input mode of every channel")
    group.add_argument("--distribution", choices=DISTRIBUTIONS, help="S3DataDistributionType")
    group.add_argument("--s3-data-type", choices=S3_DATA_TYPES)
    group.add_argument("--record-wrapping", choices=RECORD_WRAPPINGS)
    group.add_argument("--attribute-names", type=_names, metavar="A,B",
                       help="augmented manifest attributes, image first: source-ref,class "
                       "(sent for AugmentedManifestFile channels)")
    group.add_argument("--channel-config", action="append", default=[],
                       metavar="NAME:KEY=VALUE",
                       help="one channel's setting (keys: content_type, input_mode, "
                       "distribution, s3_data_type, record_wrapping, attribute_names), e.g. "
                       "train:distribution=ShardedByS3Key")
    group.add_argument("--model-data", metavar="S3_URI",
                       help="incremental training: a previous job's model.tar.gz, sent as the "
                       "'model' channel (application/x-sagemaker-model, File mode)")


def default_input_mode(args: argparse.Namespace) -> str:
    """The job's input mode (``AlgorithmSpecification.TrainingInputMode``)."""
    preset = DATA_FORMATS.get(args.data_format or "", {})
    return args.input_mode or preset.get("input_mode") or "File"


def channels_from_args(args: argparse.Namespace) -> list[Channel]:
    shared: dict[str, Any] = dict(DATA_FORMATS.get(args.data_format or "", {}))
    for key in ("content_type", "input_mode", "distribution", "s3_data_type",
                "record_wrapping", "attribute_names"):
        value = getattr(args, key)
        if value is not None:
            shared[key] = value
    overrides = _channel_overrides(args.channel_config)
    sources = list(args.channel)
    model_data = getattr(args, "model_data", None)
    if model_data:
        if MODEL_CHANNEL in dict(sources):
            raise ValueError("give the previous model either as --model-data or as "
                             "--channel model=..., not both")
        sources.append((MODEL_CHANNEL, model_data))
    names = [name for name, _ in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"a channel is given twice: {names}")
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(f"--channel-config names channels not given with --channel: "
                         f"{sorted(unknown)}")
    job_mode = default_input_mode(args)
    channels = [_channel(name, source, shared, overrides.get(name, {}), job_mode)
                for name, source in sources]
    for channel in channels:
        _check(channel)
    return channels


def _channel(name: str, source: str, shared: dict[str, Any], own: dict[str, Any],
             job_mode: str) -> Channel:
    settings = dict(shared)
    if name == MODEL_CHANNEL:
        # The data format's settings are for data channels; a model is one file, so it is
        # read as a file even beside Pipe-mode data.
        settings.update(MODEL_SETTINGS)
        settings["input_mode"] = "File" if job_mode == "Pipe" else None
    settings.update(own)
    # AttributeNames belong to augmented manifests only (a weights channel beside them has none).
    if settings.get("s3_data_type") != "AugmentedManifestFile":
        settings["attribute_names"] = ()
    return Channel(name, source, **settings)


def _split(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _names(text: str) -> tuple[str, ...]:
    names = _split(text)
    if not names:
        raise argparse.ArgumentTypeError("give attribute names separated by commas")
    return names


FIELDS = {f.name for f in dataclasses.fields(Channel)} - {"name", "source"}


def _channel_overrides(specs: list[str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, sep, setting = spec.partition(":")
        key, eq, value = setting.partition("=")
        if not (sep and eq and name) or key not in FIELDS:
            raise ValueError(f"--channel-config {spec!r} must be NAME:KEY=VALUE with KEY one of "
                             f"{', '.join(sorted(FIELDS))}")
        overrides.setdefault(name, {})[key] = _split(value) if key == "attribute_names" else value
    return overrides


def _check(channel: Channel) -> None:
    for value, allowed, what in (
        (channel.input_mode, INPUT_MODES, "input_mode"),
        (channel.distribution, DISTRIBUTIONS, "distribution"),
        (channel.s3_data_type, S3_DATA_TYPES, "s3_data_type"),
        (channel.record_wrapping, RECORD_WRAPPINGS, "record_wrapping"),
    ):
        if value is not None and value not in allowed:
            raise ValueError(f"channel {channel.name!r}: {what}={value!r} is not one of "
                             f"{', '.join(allowed)}")
    if channel.s3_data_type == "AugmentedManifestFile" and len(channel.attribute_names) < 2:
        raise ValueError(f"channel {channel.name!r} is an augmented manifest: give "
                         "--attribute-names IMAGE_ATTRIBUTE,LABEL_ATTRIBUTE, e.g. "
                         "source-ref,class")
