#!/usr/bin/env python3
"""Emulate SageMaker Pipe mode locally: feed channel FIFOs epoch by epoch.

SageMaker streams a Pipe-mode channel through FIFOs ``input/data/<channel>_0``, ``_1``, ...: one
per pass over the data, the next created once the previous has been read to its end. SageMaker's
own local mode cannot do this; this script can, for two kinds of channel:

* ``--rec CHANNEL=PATH``: the bytes of a ``.rec`` file (or of every ``.rec`` in a folder);
* ``--manifest CHANNEL=PATH``: an augmented manifest with ``RecordWrapperType=RecordIO``: per
  line, one RecordIO record per attribute in ``AttributeNames`` order; the record of the image
  reference (the first attribute) and of every attribute ending in ``-ref`` (a segmentation
  label PNG) holds the referenced file's bytes, found under ``--images`` as the train command
  finds them in File mode; every other attribute's record holds its JSON value.

``--configure`` writes the channels into ``input/config/inputdataconfig.json`` exactly as
SageMaker does: ``ContentType``, ``TrainingInputMode``, ``S3DistributionType`` and
``RecordWrapperType``, nothing else (SageMaker never passes ``AttributeNames`` to the container:
a stream of more than two attributes needs the job's hyperparameter ``attribute_names``, which
the emulator reminds you of). After ``--`` give a command (e.g. ``train``):
it runs with ``SAGEMAKER_BASE_DIR`` set, the feeding stops when it exits, and its exit status is
returned. Without a command the FIFOs are fed until Ctrl-C (or ``--epochs`` passes each).

    python local_test/pipe_emulator.py --base-dir /tmp/job --configure \\
        --rec train=digits_train.rec --rec validation=digits_val.rec -- train
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.data.manifest import choose_attributes, read_lines
from train.data.recordio import frame
from train.data.source_ref import SourceResolver
from train.errors import UserError

CHUNK = 1 << 20
POLL_SECONDS = 0.02
RECORDIO = "application/x-recordio"
REF_SUFFIX = "-ref"

Feed = Callable[[], Iterator[bytes]]


def rec_feed(path: Path) -> Feed:
    files = sorted(path.glob("*.rec")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise UserError(f"{path}: no .rec file")

    def chunks() -> Iterator[bytes]:
        for file in files:
            with open(file, "rb") as fh:
                while block := fh.read(CHUNK):
                    yield block
    return chunks


def manifest_feed(path: Path, images: Path, attribute_names: tuple[str, ...],
                  source_ref_prefix: str | None) -> tuple[Feed, tuple[str, ...]]:
    """Check every line up front (a bad one fails here, not mid-epoch) and build the feed."""
    resolver = SourceResolver(images, source_ref_prefix)
    samples: list[list[Path | bytes]] = []
    for number, obj in read_lines(path):
        where = f"{path.name}, line {number}"
        if not attribute_names:
            found = choose_attributes(obj, (), None, where)
            attribute_names = (found.image, found.label)
        records: list[Path | bytes] = []
        for i, name in enumerate(attribute_names):
            if name not in obj:
                raise UserError(f"{where} has no attribute {name!r} (AttributeNames "
                                f"{list(attribute_names)}); SageMaker would fail the job")
            if i == 0 or name.endswith(REF_SUFFIX):  # SageMaker streams the object's bytes
                relative = resolver.resolve(obj[name], where)
                if relative is None:
                    raise UserError(f"{where}: {name} {obj[name]} not found under {images}")
                records.append(images / relative)
            else:
                records.append(json.dumps(obj[name]).encode())
        samples.append(records)

    def chunks() -> Iterator[bytes]:
        for records in samples:
            yield b"".join(frame(r.read_bytes() if isinstance(r, Path) else r)
                           for r in records)
    return chunks, attribute_names


class ChannelFeeder(threading.Thread):
    """Create ``<channel>_<n>`` FIFOs one after another and write one pass into each."""

    def __init__(self, data_dir: Path, channel: str, feed: Feed, epochs: int | None,
                 stop: threading.Event) -> None:
        super().__init__(name=f"feed-{channel}", daemon=True)
        self.data_dir, self.channel, self.feed, self.epochs, self.stop = (
            data_dir, channel, feed, epochs, stop)
        self.passes = 0

    def run(self) -> None:
        while not self.stop.is_set() and (self.epochs is None or self.passes < self.epochs):
            path = self.data_dir / f"{self.channel}_{self.passes}"
            os.mkfifo(path)
            try:
                fd = self._open_when_read(path)
                if fd is None:
                    return
                with os.fdopen(fd, "wb") as fh:
                    for chunk in self.feed():
                        fh.write(chunk)
            except BrokenPipeError:
                log(f"{path.name}: the reader went away before the end of the pass")
                return
            finally:
                path.unlink(missing_ok=True)
            log(f"{path.name}: pass written")
            self.passes += 1

    def _open_when_read(self, path: Path) -> int | None:
        while not self.stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(POLL_SECONDS)
                continue
            os.set_blocking(fd, True)
            return fd
        return None


def log(message: str) -> None:
    print(f"[pipe_emulator] {message}", file=sys.stderr, flush=True)


def remove_stale_fifos(data_dir: Path, channels: list[str]) -> None:
    for channel in channels:
        for path in data_dir.glob(f"{channel}_*"):
            if path.name[len(channel) + 1:].isdigit() and stat.S_ISFIFO(path.lstat().st_mode):
                path.unlink()


def configure(base_dir: Path, channels: dict[str, dict]) -> None:
    path = base_dir / "input/config/inputdataconfig.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    config = json.loads(path.read_text()) if path.is_file() else {}
    config.update(channels)
    path.write_text(json.dumps(config, indent=2) + "\n")


def _pairs(values: list[str], option: str) -> list[tuple[str, Path]]:
    pairs = []
    for value in values:
        channel, sep, path = value.partition("=")
        if not sep or not channel or not path:
            raise UserError(f"{option} {value!r}: expected CHANNEL=PATH")
        pairs.append((channel, Path(path)))
    return pairs


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-dir", type=Path, required=True, help="the fake /opt/ml tree")
    parser.add_argument("--rec", action="append", default=[], metavar="CHANNEL=PATH")
    parser.add_argument("--manifest", action="append", default=[], metavar="CHANNEL=PATH")
    parser.add_argument("--images", type=Path, help="folder holding the manifests' images")
    parser.add_argument("--attribute-names", help="comma-separated; default: source-ref and "
                        "the label attribute found in the manifest's first line")
    parser.add_argument("--source-ref-prefix", help="S3 prefix --images was copied from")
    parser.add_argument("--label-format", choices=("class-id", "multi-hot"),
                        help="added to the manifest channels' ContentType with --configure")
    parser.add_argument("--epochs", type=int, help="passes per channel (default: unlimited)")
    parser.add_argument("--configure", action="store_true",
                        help="write the channels into inputdataconfig.json")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    data_dir = args.base_dir / "input/data"
    data_dir.mkdir(parents=True, exist_ok=True)
    feeds: dict[str, Feed] = {}
    configs: dict[str, dict] = {}
    try:
        for channel, path in _pairs(args.rec, "--rec"):
            feeds[channel] = rec_feed(path)
            configs[channel] = {"ContentType": RECORDIO, "TrainingInputMode": "Pipe",
                                "S3DistributionType": "FullyReplicated",
                                "RecordWrapperType": "None"}
        names = tuple(args.attribute_names.split(",")) if args.attribute_names else ()
        for channel, path in _pairs(args.manifest, "--manifest"):
            if args.images is None:
                raise UserError("--manifest needs --images (the folder holding the images)")
            feeds[channel], found = manifest_feed(path, args.images, names,
                                                  args.source_ref_prefix)
            content_type = RECORDIO + (f"; label-format={args.label_format}"
                                       if args.label_format else "")
            configs[channel] = {"ContentType": content_type, "TrainingInputMode": "Pipe",
                                "S3DistributionType": "FullyReplicated",
                                "RecordWrapperType": "RecordIO"}
            log(f"{channel}: streaming {len(found)} records per manifest line "
                f"{list(found)}" + ("; set the job's hyperparameter attribute_names="
                                    f"{','.join(found)}" if len(found) > 2 else ""))
    except (UserError, OSError) as exc:
        log(f"error: {exc}")
        return 2
    if not feeds:
        log("error: give at least one --rec or --manifest channel")
        return 2
    if args.configure:
        configure(args.base_dir, configs)
    remove_stale_fifos(data_dir, list(feeds))
    stop = threading.Event()
    feeders = [ChannelFeeder(data_dir, channel, feed, args.epochs, stop)
               for channel, feed in feeds.items()]
    for feeder in feeders:
        feeder.start()
    try:
        if command:
            env = {**os.environ, "SAGEMAKER_BASE_DIR": str(args.base_dir)}
            return subprocess.run(command, env=env, check=False).returncode
        while any(f.is_alive() for f in feeders):
            time.sleep(0.2)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        stop.set()
        for feeder in feeders:
            feeder.join(timeout=1)
        remove_stale_fifos(data_dir, list(feeds))


if __name__ == "__main__":
    sys.exit(main())
