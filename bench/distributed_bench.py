#!/usr/bin/env python3
"""Distributed training on this machine: images/s of one training process against two.

The same job (resnet18, the digits data at --size pixels, global batch --batch, no validation,
no loader workers) runs through the real ``train`` command three ways: one process with every
core; two processes on one host (``processes_per_host=2``, DDP over gloo, each with half the
cores); and two "hosts" (two trees, loopback addresses, one process and half the cores each).
A rate is the training samples of an epoch (every process together) over the time between two
epochs' end-of-epoch log lines, epoch 0 left out as warm-up. Results go to
bench/results/distributed.{json,md}; nothing is asserted.

    .venv/bin/python bench/distributed_bench.py [--size 64] [--batch 32] [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))

from bench.machine import cpu_model  # noqa: E402
from bench.report import save  # noqa: E402

# The same trees the tests build.
from tests.conftest import load_local_test_script, make_opt_ml  # noqa: E402
from tests.distributed.hosts import free_port, make_hosts  # noqa: E402

TRAIN = Path(sys.executable).parent / "train"
EPOCH_LINE = re.compile(r"^\[(\S+ \S+) INFO .*epoch (\d+): (\d+) training samples on all ranks",
                        re.MULTILINE)


def _digits(out: Path, size: int) -> Path:
    load_local_test_script("digits_data").build(out, size=size, seed=0)
    return out / "train"


def _rate(log: str) -> float:
    """Samples per second over the epochs after the first."""
    stamps = [(datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f"), int(n))
              for t, _, n in EPOCH_LINE.findall(log)]
    if len(stamps) < 2:
        raise RuntimeError(f"too few epoch lines in the log:\n{log[-2000:]}")
    seconds = (stamps[-1][0] - stamps[0][0]).total_seconds()
    return sum(n for _, n in stamps[1:]) / seconds


def _run(bases: list[Path], threads: int) -> tuple[float, float]:
    """Start one ``train`` per tree; the rate from the first tree's log and the wall time."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads),
           "SM_VISION_MASTER_PORT": str(free_port())}
    start = time.perf_counter()
    procs = [subprocess.Popen([str(TRAIN)], env={**env, "SAGEMAKER_BASE_DIR": str(base)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for base in bases]
    logs = [proc.communicate(timeout=3600)[0] for proc in procs]
    wall = time.perf_counter() - start
    for proc, log in zip(procs, logs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"the job failed:\n{log[-3000:]}")
    return _rate(logs[0]), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--render", action="store_true",
                        help="only rewrite distributed.md from distributed.json")
    args = parser.parse_args(argv)
    if args.render:
        markdown = to_markdown(json.loads((RESULTS / "distributed.json").read_text()))
        (RESULTS / "distributed.md").write_text(markdown)
        print(markdown)
        return 0
    cores = len(os.sched_getaffinity(0))
    hps = {"num_layers": "18", "image_shape": f"3,{args.size},{args.size}", "num_classes": "10",
           "epochs": str(args.epochs), "mini_batch_size": str(args.batch), "optimizer": "sgd",
           "learning_rate": "0.01", "seed": "0", "num_workers": "0",
           "checkpoint_frequency": str(args.epochs)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        channels = {"train": _digits(root / "digits", args.size)}
        one = make_opt_ml(root / "one", hps, channels)
        rows.append(("1 process", *_run([one], cores)))
        two = make_opt_ml(root / "two", {**hps, "processes_per_host": "2"}, channels)
        rows.append(("2 processes on 1 host (gloo)", *_run([two], max(1, cores // 2))))
        # mini_batch_size is per host: half on each of two hosts is the same global batch.
        hosts = make_hosts(root / "hosts", 2, {**hps, "mini_batch_size": str(args.batch // 2)},
                           channels)
        rows.append(("2 hosts x 1 process (gloo)", *_run(hosts, max(1, cores // 2))))
    baseline = rows[0][1]
    result = {
        "machine": f"{platform.machine()}, {cores} cores, {cpu_model()}",
        "date": datetime.now().isoformat(timespec="seconds"),
        "setup": {"model": "resnet18", "size": args.size, "global_batch": args.batch,
                  "epochs": args.epochs, "train_images": 1258},
        "rows": [{"configuration": name, "images_per_second": round(rate, 1),
                  "relative": round(rate / baseline, 3), "job_seconds": round(wall, 1)}
                 for name, rate, wall in rows],
    }
    save(result, RESULTS / "distributed", to_markdown)
    return 0


def to_markdown(result: dict) -> str:
    setup = result["setup"]
    slower = [r["configuration"] for r in result["rows"][1:] if r["relative"] < 1]
    verdict = (
        f"On {result['machine'].split(', ')[1]}, {' and '.join(slower)} are slower than one "
        f"process: each step all-reduces {setup['model']}'s gradients over gloo while one "
        "process already keeps every core busy with its convolutions. So a CPU instance runs "
        "one training process unless `processes_per_host` says otherwise."
        if slower else "Every distributed configuration is at least as fast as one process.")
    lines = [
        "# Distributed training on this machine (CPU, gloo)",
        "",
        f"{result['machine']}; {result['date']}. {setup['model']} at {setup['size']}x"
        f"{setup['size']}, global batch {setup['global_batch']}, {setup['train_images']:,} "
        f"digits images, {setup['epochs']} epochs, no validation, no loader workers; rate over "
        "the epochs after the first. Produced by `bench/distributed_bench.py`.",
        "",
        "| configuration | images/s | vs 1 process | whole job (s) |",
        "|---|---|---|---|",
        *[f"| {r['configuration']} | {r['images_per_second']} | {r['relative']}x | "
          f"{r['job_seconds']} |" for r in result["rows"]],
        "",
        verdict + " No GPU was available: the single-GPU DDP step rate against the old "
        "DataParallel path could not be measured here.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
