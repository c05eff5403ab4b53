#!/usr/bin/env python3
"""Training throughput on this machine: the full pipeline vs. the model step alone (CPU).

For each image set, with the same model (resnet18), batch size and resolution:
- ``model_only``: forward/backward/step on pre-made, already normalized float batches (the
  ceiling: no decoding, no augmentation, no normalization);
- ``pipeline``: reader → decode → augment (``crop``) → ``uint8`` batch → ``Batch.model_input``
  (conversion and normalization on the device, here the CPU) → forward/backward/step, exactly
  as a job runs it, for 0, 1 and 2 loader workers;
- ``data_only``: the loader alone, no model (how fast images can be fed).
``pipeline / model_only`` is the share of the step speed the data path leaves. Every rate is
measured after warm-up batches (the loader's worker processes live for the whole job, so the
steady state is what an epoch sees). The machine's speed drifts by several per cent from run to
run, more than the differences measured: each pipeline run follows a model-only run, and the
share is the median over ``--repeats`` such pairs of their ratio. Two sets:

* ``digits``: the demo's digit PNGs at 64x64 (tiny images: the model step is fast, so the data
  path's share is the largest it gets);
* ``photos``: photo-like 500x375 JPEGs at 224x224, as for ImageNet-style transfer learning.

Results go to bench/results/train.{json,md}. Timings are recorded, never asserted.

    flock -x /work/locks/cpu.lock .venv/bin/python bench/train_bench.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from torch import nn

from common.artifact import InputSpec
from common.models import build_classifier
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from train.data.dataset import Batch, EpochSampler, ImageDataset
from train.data.folder import ImageFolderReader
from train.data.loading import Split, default_num_workers, make_loader, stop_workers
from train.transforms import train_transform

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CPU = torch.device("cpu")

sys.path[:0] = [str(REPO / "bench"), str(REPO)]
from machine import cpu_model  # noqa: E402
from photos import write_photo_folder  # noqa: E402
from report import save  # noqa: E402

from tests.conftest import load_local_test_script  # noqa: E402 - the demo's digits

# name → (image size, timed batches, warm-up batches)
SETS = {"digits": (64, 40, 5), "photos": (224, 10, 2)}


def _digits(out: Path, size: int) -> Path:
    load_local_test_script("digits_data").build(out, size=size, seed=0)
    return out / "train"


def _photos(out: Path, count: int) -> Path:
    write_photo_folder(out / "train", count, [f"class{i}" for i in range(10)],
                       mixed_sizes=False)
    return out / "train"


def _batches(split: Split, batch: int, workers: int) -> Iterator[Batch]:
    """The split's batches, epoch after epoch, through the job's (persistent) loader."""
    epoch = 0
    while True:
        split.dataset.set_epoch(epoch)
        split.sampler.set_epoch(epoch)
        yield from make_loader(split, batch, workers, pin_memory=False)
        epoch += 1


def _take(batches: Iterator[Batch], n: int) -> list[Batch]:
    return [next(batches) for _ in range(n)]


class _Timed:
    """Yields ``warmup`` batches, then starts the clock and yields ``n`` more."""

    def __init__(self, batches: Iterable[Batch], warmup: int, n: int) -> None:
        self.batches, self.warmup, self.n = iter(batches), warmup, n
        self.start = 0.0
        self.images = 0

    def __iter__(self) -> Iterator[Batch]:
        for _ in range(self.warmup):
            yield next(self.batches)
        self.start = time.perf_counter()
        for _ in range(self.n):
            batch = next(self.batches)
            self.images += batch.size
            yield batch

    @property
    def rate(self) -> float:
        return self.images / (time.perf_counter() - self.start)


def _step_rate(batches: Iterable[Batch], warmup: int, n: int, classes: int) -> float:
    """Images/s of the training step (as the engine runs it on CPU: float32, no autocast)."""
    torch.manual_seed(0)
    model = build_classifier("resnet", 18, classes)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    timed = _Timed(batches, warmup, n)
    for batch in timed:
        loss = criterion(model(batch.model_input(CPU, channels_last=False)), batch.targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return timed.rate


def _premade(split: Split, batch: int) -> Batch:
    """One batch as the model takes it (normalized float), standing in for every batch."""
    loaded = next(_batches(split, batch, 0))
    premade = Batch([])
    premade.images = loaded.model_input(CPU, channels_last=False)
    premade.targets, premade.size = loaded.targets, loaded.size
    return premade


def bench_set(name: str, root: Path, size: int, batch: int, n: int, warmup: int,
              workers: list[int], repeats: int) -> dict:
    spec = InputSpec(3, size, size, size, IMAGENET_MEAN, IMAGENET_STD)
    reader = ImageFolderReader(root, "train")
    classes = len(reader.class_names or [])

    def split() -> Split:
        dataset = ImageDataset(reader, train_transform(spec, "crop"), seed=0)
        return Split("train", dataset, EpochSampler(len(dataset), shuffle=True, seed=0))

    premade = _premade(split(), batch)

    def model_only() -> float:
        return _step_rate([premade] * (warmup + n), warmup, n, classes)

    # The machine's speed drifts by several per cent between runs: each pipeline run is paired
    # with a model-only run right before it, and the share is the median of the pairs' ratios.
    ceiling_runs = []
    rows = []
    for count in workers:
        loading = split()
        data = _Timed(_batches(loading, batch, count), warmup, n * 4)
        for b in data:
            b.model_input(CPU, channels_last=False)
        data_only = data.rate
        stop_workers(loading)
        pairs = []
        for _ in range(repeats):
            ceiling_runs.append(model_only())
            training = split()
            pairs.append((ceiling_runs[-1],
                          _step_rate(_batches(training, batch, count), warmup, n, classes)))
            stop_workers(training)
        ratios = sorted(pipeline / model for model, pipeline in pairs)
        pipeline = statistics.median(p for _, p in pairs)
        rows.append({"workers": count, "pipeline": round(pipeline, 1),
                     "data_only": round(data_only, 1),
                     "pipeline_vs_model_only": round(statistics.median(ratios), 3),
                     "pair_ratios": [round(r, 3) for r in ratios]})
        print(f"{name}: {count} workers: pipeline {pipeline:.1f}, data alone "
              f"{data_only:.1f} images/s, paired ratios {rows[-1]['pair_ratios']}", flush=True)
    model_only_rates = ceiling_runs
    print(f"{name}: model step alone {model_only_rates} images/s", flush=True)
    return {"set": name, "image_size": size, "images": len(reader), "batch": batch,
            "timed_batches": n, "warmup_batches": warmup, "repeats": repeats,
            "model_only": [round(v, 1) for v in model_only_rates], "rows": rows}


def to_markdown(result: dict) -> str:
    m = result["machine"]
    default = result["default_workers"]
    lines = ["# Training throughput (CPU)", "",
             f"Measured {result['date']} with `bench/train_bench.py` on {m['cpus']} CPU cores "
             f"({m['processor']}), torch {m['torch']} with {m['threads']} threads, under the "
             f"exclusive CPU lock (load average at start {m['load_average']}). resnet18, "
             "SGD, `crop` augmentation, batches of "
             f"{result['sets'][0]['batch']}. The model step alone runs on pre-made normalized "
             f"float batches. Each of {result['sets'][0]['repeats']} pipeline runs per worker "
             "count follows a model-only run, and the share is the median of those pairs' "
             "ratios (the machine's speed drifts by several per cent between runs); rates are "
             "medians; "
             "the full pipeline includes reading, decoding, augmenting, the uint8 hand-over "
             "and the conversion and normalization on the device. Rates are measured after "
             "warm-up batches: the loader's worker processes persist for the whole job. "
             f"Default loader workers on this machine (no GPU): {default}.", ""]
    for s in result["sets"]:
        ceiling = statistics.median(s["model_only"])
        lines += [f"## {s['set']}: {s['images']} images at {s['image_size']}x"
                  f"{s['image_size']}, {s['timed_batches']} timed batches", "",
                  f"Model step alone: {ceiling:.1f} images/s (median of "
                  f"{len(s['model_only'])} runs, {min(s['model_only']):.1f}–"
                  f"{max(s['model_only']):.1f}).", "",
                  "| loader workers | full pipeline, images/s | share of the model-only rate "
                  "(median of pairs) | every pair's share | data alone, images/s |",
                  "| ---: | ---: | ---: | --- | ---: |"]
        for r in s["rows"]:
            mark = " (default)" if r["workers"] == default else ""
            pairs = ", ".join(f"{100 * v:.1f}" for v in r["pair_ratios"])
            lines.append(f"| {r['workers']}{mark} | {r['pipeline']:.1f} | "
                         f"{100 * r['pipeline_vs_model_only']:.1f} % | {pairs} | "
                         f"{r['data_only']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=5,
                        help="pairs of model-only and pipeline runs per worker count")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load = [round(v, 2) for v in os.getloadavg()]
    sets = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            size, n, warmup = SETS[name]
            root = (_digits(Path(tmp) / name, size) if name == "digits"
                    else _photos(Path(tmp) / name, 640))
            sets.append(bench_set(name, root, size, args.batch, n, warmup, args.workers,
                                  args.repeats))
    cpus = len(os.sched_getaffinity(0))
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": cpus, "processor": cpu_model(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "load_average": load},
        "default_workers": default_num_workers(False),
        "sets": sets,
    }
    save(result, args.out / "train", to_markdown)


if __name__ == "__main__":
    main()
