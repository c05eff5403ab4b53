#!/usr/bin/env python3
"""Semantic segmentation on the synthetic shapes data set: every algorithm, mIOU and time.

Each run is a real job (``train.segmentation.run``) on a fake /opt/ml: resnet-18 backbone,
64x64 crops, adam, no ImageNet weights, 32 training and 8 validation images. Two kinds of row:

* ``folders``: fcn, psp and deeplab on the built-in's four channels (+ label map);
* ``manifest/File`` vs ``manifest/Pipe``: fcn on the same Ground Truth manifest read from disk
  and streamed through real FIFOs (``local_test/pipe_emulator.py``'s feeder threads), side by
  side: what Pipe mode costs and whether it learns as well.

Results go to bench/results/segmentation.{json,md}; numbers are recorded, never asserted (the
test suite asserts mIOU >= 0.9 for fcn).

    .venv/bin/python bench/segmentation_bench.py [--epochs 12] [--algorithms fcn,psp,deeplab]
        [--no-pipe]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
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
LABEL = f"{synthetic.GT_JOB}-ref"
ATTRIBUTES = ["source-ref", LABEL, f"{LABEL}-metadata"]
TRAIN, VALIDATION = 32, 8


def _config(root: Path, hyperparameters: dict[str, str], channels: dict[str, dict]) -> None:
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    (root / "input" / "data").mkdir(parents=True)


def _folder_job(root: Path, data: Path, hyperparameters: dict[str, str]) -> TrainingEnv:
    _config(root, hyperparameters, {name: {"TrainingInputMode": "File"} for name in CHANNELS})
    for name in CHANNELS:
        (root / "input" / "data" / name).symlink_to(data / name)
    return TrainingEnv.from_base_dir(root)


def _manifest_job(root: Path, data: Path, hyperparameters: dict[str, str], mode: str
                  ) -> TrainingEnv:
    manifest = {"ContentType": "application/x-recordio", "TrainingInputMode": mode,
                "RecordWrapperType": "RecordIO", "AttributeNames": ATTRIBUTES}
    channels = {"train": manifest, "validation": manifest}
    if mode == "File":
        channels["images"] = {"TrainingInputMode": "File"}
    _config(root, hyperparameters, channels)
    for name in channels if mode == "File" else ():
        (root / "input" / "data" / name).symlink_to(data / name)
    return TrainingEnv.from_base_dir(root)


def _emulator():
    """``local_test/pipe_emulator.py``, a script rather than a package module."""
    sys.path.insert(0, str(REPO / "local_test"))
    import pipe_emulator

    return pipe_emulator


def _timed(env: TrainingEnv, feeds: dict[str, object] | None = None) -> tuple[dict, float]:
    """Run the job; with ``feeds``, FIFOs are fed pass by pass while it runs."""
    stop, threads = threading.Event(), []
    if feeds:
        emulator = _emulator()
        threads = [emulator.ChannelFeeder(env.base_dir / "input" / "data", channel, feed,
                                          None, stop) for channel, feed in feeds.items()]
        for thread in threads:
            thread.start()
    started = time.monotonic()
    try:
        final = run(env, lambda: False)
    finally:
        seconds = time.monotonic() - started
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
    return final, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--backbone", default="resnet-18")
    parser.add_argument("--algorithms", default="fcn,psp,deeplab")
    parser.add_argument("--no-pipe", action="store_true",
                        help="skip the manifest File vs Pipe pair")
    args = parser.parse_args()
    rows = _previous_runs()
    load = os.getloadavg()[0]
    base = {"backbone": args.backbone, "epochs": str(args.epochs)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs: list[tuple[str, str, TrainingEnv, dict | None]] = []
        data = synthetic.build(work / "data", train=TRAIN, validation=VALIDATION)
        for algorithm in args.algorithms.split(","):
            env = _folder_job(work / algorithm, data, {**FAST, **base, "algorithm": algorithm})
            runs.append((algorithm, "folders", env, None))
        if not args.no_pipe:
            gt = synthetic.build_ground_truth(work / "gt", train=TRAIN, validation=VALIDATION)
            hps = {**FAST, **base, "algorithm": "fcn", "num_training_samples": str(TRAIN)}
            runs.append(("fcn", "manifest/File", _manifest_job(work / "file", gt, hps, "File"),
                         None))
            emulator = _emulator()
            feeds = {split: emulator.manifest_feed(gt / split / f"{split}.manifest",
                                                   gt / "images", tuple(ATTRIBUTES), None)[0]
                     for split in ("train", "validation")}
            runs.append(("fcn", "manifest/Pipe", _manifest_job(work / "pipe", gt, hps, "Pipe"),
                         feeds))
        for algorithm, source, env, feeds in runs:
            final, seconds = _timed(env, feeds)
            key = (algorithm, args.backbone, source)
            rows = [r for r in rows
                    if (r["algorithm"], r["backbone"], r.get("data", "folders")) != key]
            rows.append({"algorithm": algorithm, "backbone": args.backbone, "data": source,
                         "epochs": args.epochs, "mIOU": round(final["validation:mIOU"], 4),
                         "pixel_accuracy": round(final["validation:pixel_accuracy"], 4),
                         "best_epoch": int(final["best_epoch"]), "seconds": round(seconds, 1),
                         "load_at_start": round(load, 2)})
            print(rows[-1], flush=True)
            _write(rows)


def _previous_runs() -> list[dict]:
    """Rows of other algorithms/backbones from an earlier call are kept (one row per key)."""
    path = RESULTS / "segmentation.json"
    return json.loads(path.read_text())["runs"] if path.is_file() else []


def _write(rows: list[dict]) -> None:
    setup = (f"64x64 crops, batch 8, adam lr 0.001, poly, {TRAIN} train / {VALIDATION} "
             f"validation synthetic images, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads on {os.cpu_count()} CPUs, "
             f"{platform.machine()}; `load` is the 1-minute load average when the run began. "
             "`folders`: the built-in's four channels with the label map (ignore rings of 255); "
             "`manifest/*`: the Ground Truth version of the same shapes (colour PNGs, no ignore "
             "value), read from disk (File) or streamed through FIFOs (Pipe, shuffle buffer 256)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "segmentation.json").write_text(json.dumps({"setup": setup, "runs": rows},
                                                          indent=2) + "\n")
    lines = ["# Semantic segmentation on synthetic shapes (CPU)", "", setup + ".", "",
             "| algorithm | backbone | data | epochs | mIOU | pixel accuracy | best epoch | "
             "seconds | load |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['algorithm']} | {r['backbone']} | {r.get('data', 'folders')} | "
              f"{r['epochs']} | {r['mIOU']} | {r['pixel_accuracy']} | {r['best_epoch']} | "
              f"{r['seconds']} | {r.get('load_at_start', '?')} |" for r in rows]
    (RESULTS / "segmentation.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
