#!/usr/bin/env python3
"""Training throughput on this machine: the full pipeline vs. the model step alone.

Three measurements, same model (resnet18), batch size and resolution:
- ``pipeline``: folder reader → decode → transform → collate → forward/backward/step, as a job;
- ``model_only``: forward/backward/step on pre-made tensors (the ceiling);
- ``data_only``: the data pipeline with no model (how fast images can be fed).
``pipeline / model_only`` is the share of the step speed the data path leaves. Results go to
bench/results/train.{json,md}. Timings are recorded, never asserted.

    .venv/bin/python bench/train_bench.py [--size 64] [--batch 32] [--batches 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from common.artifact import InputSpec
from common.models import build_classifier
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from train.data.dataset import Batch, EpochSampler, ImageDataset
from train.data.folder import ImageFolderReader
from train.data.loading import Split, make_loader
from train.engine import Precision, RunningStats, train_one_epoch
from train.transforms import train_transform

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def _digits(out: Path, size: int) -> Path:
    spec = importlib.util.spec_from_file_location("digits", REPO / "local_test/digits_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.build(out, size=size, seed=0)
    return out / "train"


def _step_rate(batches: list[Batch] | torch.utils.data.DataLoader, n_images: int) -> float:
    torch.manual_seed(0)
    model = build_classifier("resnet", 18, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    train_one_epoch(model=model, batches=batches, optimizer=optimizer,
                    criterion=nn.CrossEntropyLoss(), precision=Precision(torch.device("cpu"),
                                                                         None),
                    scaler=None, stats=RunningStats(), epoch=0, top_k=None,
                    channels_last=False, on_bad=lambda names: None, should_stop=lambda: False)
    return n_images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    spec = InputSpec(3, args.size, args.size, args.size, IMAGENET_MEAN, IMAGENET_STD)
    n_images = args.batch * args.batches
    with tempfile.TemporaryDirectory() as tmp:
        root = _digits(Path(tmp), args.size)
        reader = ImageFolderReader(root, "train")
        dataset = ImageDataset(reader, train_transform(spec, "crop"), seed=0)
        sampler = EpochSampler(len(dataset), shuffle=True, seed=0)
        split = Split("train", dataset, sampler)

        def loader() -> list[Batch]:
            batches = []
            for batch in make_loader(split, args.batch, args.workers, pin_memory=False):
                batches.append(batch)
                if len(batches) == args.batches:
                    break
            return batches

        start = time.perf_counter()
        loaded = loader()
        data_only = sum(b.size for b in loaded) / (time.perf_counter() - start)

        torch.manual_seed(0)
        premade = [loaded[0]] * args.batches
        model_only = _step_rate(premade, n_images)
        pipeline = _step_rate(_Limited(make_loader(split, args.batch, args.workers, False),
                                       args.batches), n_images)

    result = {
        "machine": {"cpus": torch.get_num_threads(), "processor": platform.processor(),
                    "torch": torch.__version__},
        "config": {"model": "resnet18", "image_size": args.size, "batch": args.batch,
                   "batches": args.batches, "loader_workers": args.workers,
                   "augmentation": "crop"},
        "images_per_second": {"pipeline": round(pipeline, 1), "model_only": round(model_only, 1),
                              "data_only": round(data_only, 1)},
        "pipeline_vs_model_only": round(pipeline / model_only, 3),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(result, indent=2) + "\n")
    rates = result["images_per_second"]
    (RESULTS / "train.md").write_text(
        "# Training throughput (CPU)\n\n"
        f"resnet18, {args.size}x{args.size}, batch {args.batch}, {args.batches} batches, "
        f"{args.workers} loader workers, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads.\n\n"
        "| path | images/s |\n|---|---|\n"
        f"| full pipeline (decode + augment + step) | {rates['pipeline']} |\n"
        f"| model step alone (pre-made tensors) | {rates['model_only']} |\n"
        f"| data pipeline alone (no model) | {rates['data_only']} |\n\n"
        f"The pipeline reaches {100 * result['pipeline_vs_model_only']:.0f}% of the model-only "
        "rate.\n"
    )
    print(json.dumps(result, indent=2))


class _Limited:
    """The first ``n`` batches of a loader."""

    def __init__(self, loader: torch.utils.data.DataLoader, n: int) -> None:
        self.loader, self.n = loader, n

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i == self.n:
                return
            yield batch


if __name__ == "__main__":
    main()
