#!/usr/bin/env python3
"""Semantic segmentation on the synthetic shapes data set: every algorithm, mIOU and time.

Each run is a real job (``train.segmentation.run``) on a fake /opt/ml: resnet-18 backbone,
64x64 crops, adam, no ImageNet weights, 32 training and 8 validation images. Results go to
bench/results/segmentation.{json,md}; numbers are recorded, never asserted (the test suite
asserts mIOU >= 0.9 for fcn).

    .venv/bin/python bench/segmentation_bench.py [--epochs 12] [--algorithms fcn,psp,deeplab]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from train.contract import TrainingEnv
from train.segmentation import run, synthetic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CHANNELS = ("train", "train_annotation", "validation", "validation_annotation", "label_map")
FAST = {"use_pretrained_model": "0", "num_classes": str(synthetic.NUM_CLASSES),
        "base_size": "64", "crop_size": "64", "mini_batch_size": "8", "optimizer": "adam",
        "learning_rate": "0.001", "seed": "0", "num_workers": "0"}


def _job(root: Path, data: Path, hyperparameters: dict[str, str]) -> TrainingEnv:
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    for name in CHANNELS:
        (root / "input" / "data").mkdir(parents=True, exist_ok=True)
        (root / "input" / "data" / name).symlink_to(data / name)
    return TrainingEnv.from_base_dir(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--backbone", default="resnet-18")
    parser.add_argument("--algorithms", default="fcn,psp,deeplab")
    args = parser.parse_args()
    rows = _previous_runs()
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic.build(Path(tmp) / "data", train=32, validation=8)
        for algorithm in args.algorithms.split(","):
            hps = {**FAST, "algorithm": algorithm, "backbone": args.backbone,
                   "epochs": str(args.epochs)}
            env = _job(Path(tmp) / algorithm, data, hps)
            started = time.monotonic()
            final = run(env, lambda: False)
            rows = [r for r in rows if (r["algorithm"], r["backbone"]) != (algorithm,
                                                                           args.backbone)]
            rows.append({"algorithm": algorithm, "backbone": args.backbone,
                         "epochs": args.epochs, "mIOU": round(final["validation:mIOU"], 4),
                         "pixel_accuracy": round(final["validation:pixel_accuracy"], 4),
                         "best_epoch": int(final["best_epoch"]),
                         "seconds": round(time.monotonic() - started, 1)})
            print(rows[-1], flush=True)
            _write(rows)


def _previous_runs() -> list[dict]:
    """Runs of other algorithms/backbones from an earlier call are kept (one row per pair)."""
    path = RESULTS / "segmentation.json"
    return json.loads(path.read_text())["runs"] if path.is_file() else []


def _write(rows: list[dict]) -> None:
    setup = ("64x64 crops, batch 8, adam lr 0.001, poly, 32 train / 8 "
             f"validation synthetic images, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, {platform.machine()}, CPU shared with "
             "other jobs")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "segmentation.json").write_text(json.dumps({"setup": setup, "runs": rows},
                                                          indent=2) + "\n")
    lines = ["# Semantic segmentation on synthetic shapes (CPU)", "", setup + ".", "",
             "| algorithm | backbone | epochs | mIOU | pixel accuracy | best epoch | seconds |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['algorithm']} | {r['backbone']} | {r['epochs']} | {r['mIOU']} | "
              f"{r['pixel_accuracy']} | {r['best_epoch']} | {r['seconds']} |" for r in rows]
    (RESULTS / "segmentation.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
