#!/usr/bin/env python3
"""Input-pipeline throughput: RecordIO vs. the same images as a class folder (and as a Pipe-mode
stream), through the training path: read → decode → augment → batch.

Each configuration runs whole epochs of ``train.data`` (reader, ``ImageDataset`` with the
``crop`` augmentation, ``EpochSampler`` or ``StreamSampler``, the job's ``make_loader`` with its
persistent workers) and reports images per second of the ``uint8`` batches, best of
``--repeats`` epochs (the first epoch of each also warms the page cache and starts the
workers). bench/data_peers.py compares the pipeline with MXNet's. Two image sets:

* ``photo``: ``--images`` synthetic 320x256 JPEG photos (quality 90), 8 classes, cropped to 224;
* ``digits``: the 160 32x32 JPEGs of the reference ``digits_train.rec`` (if present), each
  four times so that an epoch lasts long enough to time.

Writes ``bench/results/data.json`` and ``bench/results/data.md``.

    .venv/bin/python bench/data_bench.py [--images 800] [--repeats 2] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from report import save  # bench/, the script's own folder

from common.artifact import InputSpec
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from train.data.base import Reader, StreamReader
from train.data.dataset import EpochSampler, ImageDataset
from train.data.folder import ImageFolderReader
from train.data.labels import LabelSpec
from train.data.loading import Split, make_loader, stop_workers
from train.data.pipe import RecordIOStream
from train.data.rec import RecordFileReader
from train.data.recordio import RecordWriter, iter_records, pack_image, unpack_image
from train.data.stream import StreamSampler
from train.transforms import train_transform

ROOT = Path(__file__).resolve().parent
REFERENCE_REC = ROOT.parent / "tests/fixtures/reference/recordio/digits_train.rec"
BATCH = 32


def synthetic_photos(count: int, classes: int = 8) -> list[tuple[bytes, int]]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(count):
        label = i % classes
        base = rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((320, 256), Image.BICUBIC)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        items.append((out.getvalue(), label))
    return items


def reference_digits() -> list[tuple[bytes, int]]:
    with open(REFERENCE_REC, "rb") as fh:
        records = [unpack_image(p, "ref", o) for o, p in iter_records(fh, "ref")]
    return [(r.image, int(r.label)) for r in records]


def write_formats(items: list[tuple[bytes, int]], root: Path) -> None:
    """The same bytes as ``folder/<class>/<n>.jpg`` and as ``rec/data.rec`` + ``.idx``."""
    (root / "rec").mkdir(parents=True)
    (root / "stream").mkdir()
    with RecordWriter(root / "rec/data.rec", root / "rec/data.idx") as writer:
        for n, (data, label) in enumerate(items):
            path = root / "folder" / f"{label:03d}" / f"{n:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            writer.write(pack_image(float(label), data, n), key=n)
    shutil.copy(root / "rec/data.rec", root / "stream/train_0")


def run_epochs(reader: Reader | StreamReader, spec: InputSpec, workers: int, repeats: int,
               stream_dir: Path | None) -> float:
    dataset = ImageDataset(reader if isinstance(reader, Reader) else None,
                           train_transform(spec, "crop"), seed=0)
    sampler: EpochSampler | StreamSampler
    if isinstance(reader, StreamReader):
        sampler = StreamSampler(reader, shuffle_buffer=256, seed=0)  # pass N per epoch N
    else:
        sampler = EpochSampler(len(dataset), shuffle=True, seed=0)
    split = Split("bench", dataset, sampler)
    best = 0.0
    for epoch in range(repeats + 1):
        if isinstance(reader, StreamReader) and epoch:
            assert stream_dir is not None  # one pass per epoch: re-offer the same file
            shutil.copy(stream_dir / "train_0", stream_dir / f"train_{epoch}")
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        # The job's loader: the same one (and the same worker processes) every epoch.
        loader = make_loader(split, BATCH, workers, False)
        start = time.perf_counter()
        images = sum(batch.size for batch in loader)
        rate = images / (time.perf_counter() - start)
        if epoch:  # epoch 0 warms caches and starts the workers
            best = max(best, rate)
    stop_workers(split)
    return best


def bench_set(name: str, items: list[tuple[bytes, int]], size: int, workers: list[int],
              repeats: int) -> list[dict]:
    spec = InputSpec(3, size, size, size if size > 32 else 32, IMAGENET_MEAN, IMAGENET_STD)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_formats(items, root)
        labels = LabelSpec()
        readers: dict[str, Reader | StreamReader] = {
            "folder": ImageFolderReader(root / "folder", "train"),
            "recordio": RecordFileReader(root / "rec", "train", labels),
            "recordio-pipe": RecordIOStream(root / "stream", "train",
                                            labels.with_num_classes(10 if size == 32 else 8),
                                            wait_seconds=5),
        }
        for fmt, reader in readers.items():
            for n in workers:
                rate = run_epochs(reader, spec, n, repeats, root / "stream")
                rows.append({"set": name, "format": fmt, "workers": n, "images": len(items),
                             "crop": size, "images_per_s": round(rate, 1)})
                print(f"{name:7s} {fmt:14s} workers={n}: {rate:8.1f} images/s", flush=True)
    return rows


def to_markdown(result: dict) -> str:
    lines = ["# Input pipeline throughput (read + decode + augment + batch)", "",
             f"Machine: {result['machine']['cpus']} CPUs, {result['machine']['platform']}, "
             f"torch {result['machine']['torch']}; load average at start "
             f"{result['machine']['load_average']}. Batch {BATCH}, `crop` augmentation, best "
             f"of {result['repeats']} epochs after a warm-up epoch.", "",
             "| images | crop | format | workers | images/s | vs. folder |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    folder = {(r["set"], r["workers"]): r["images_per_s"] for r in result["rows"]
              if r["format"] == "folder"}
    for r in result["rows"]:
        ratio = r["images_per_s"] / folder[(r["set"], r["workers"])]
        lines.append(f"| {r['set']} ({r['images']}) | {r['crop']} | {r['format']} | "
                     f"{r['workers']} | {r['images_per_s']:.1f} | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    load = [round(v, 2) for v in os.getloadavg()]
    torch.set_num_threads(1)  # decoding is the subject; keep torch ops from fighting workers
    rows = bench_set("photo", synthetic_photos(args.images), 224, args.workers, args.repeats)
    if REFERENCE_REC.is_file():
        rows += bench_set("digits", reference_digits() * 4, 32, args.workers, args.repeats)
    result = {
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "load_average": load},
        "batch_size": BATCH, "repeats": args.repeats, "rows": rows,
    }
    save(result, args.out / "data", to_markdown)


if __name__ == "__main__":
    main()
