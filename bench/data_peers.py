#!/usr/bin/env python3
"""Training input pipeline vs. the peer, MXNet 1.9.1's ``ImageRecordIter``, in one run.

One command builds the data, packs it with MXNet's own ``im2rec --pass-through`` and with
``python -m train.tools pack``, and measures, on the same cores one after another:

* MXNet ``ImageRecordIter`` (1 and 2 preprocess threads) on the im2rec-made ``.rec``;
  for the image folders also ``mx.image.ImageIter`` reading the files through a ``.lst``;
* NVIDIA DALI's CPU pipeline (1 and 2 threads) on the same ``.rec`` / folder;
* ours, ``train.data`` as a job runs it, in every variant measured for issue 17.

Every pipeline does the same work: decode, resize the shorter side to 224, random 224x224 crop,
random horizontal flip, normalize with ImageNet's mean/std, and hand over float32 NCHW batches
of 32 (ours: ``uint8`` batches from the loader, then ``Batch.model_input`` on the CPU, counted).
Each pipeline runs one warm-up epoch and three timed ones; the median is reported.

Two data sets:

* ``rec``: 1,000 photo-like 500x375 JPEGs (~60 KB) in 10 classes, packed into RecordIO;
* ``folder``: the dog-breed layout (``train/001.Affenpinscher/...``, 133 classes), 1,000
  photo-sized JPEGs from 500x375 to 1600x1200.

The peers live in their own virtualenvs under bench/ (gitignored), made by ``--setup``:
``bench/.venv-mxnet`` (mxnet==1.9.1, numpy<1.24, opencv for im2rec) and ``bench/.venv-dali``
(nvidia-dali-cuda130). Writes bench/results/data_peers.{json,md}.

    .venv/bin/python bench/data_peers.py --setup      # once: the peers' venvs
    flock -x /work/locks/cpu.lock .venv/bin/python bench/data_peers.py
"""

from __future__ import annotations

import argparse
import copy
import filecmp
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from common.artifact import InputSpec
from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from train.data.base import Reader
from train.data.dataset import Batch, EpochSampler, ImageDataset
from train.data.folder import ImageFolderReader
from train.data.labels import LabelSpec
from train.data.loading import Split, make_loader, stop_workers
from train.data.rec import RecordFileReader
from train.transforms import train_transform

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MXNET_PY = BENCH / ".venv-mxnet/bin/python"
DALI_PY = BENCH / ".venv-dali/bin/python"
BATCH = 32
SIZE = 224
EPOCHS = 3
CPU = torch.device("cpu")

sys.path.insert(0, str(BENCH))
from machine import cpu_model  # noqa: E402
from means_costs import SIMD_PY, micro_costs, without_simplejpeg  # noqa: E402
from photos import write_photo_folder  # noqa: E402
from report import save  # noqa: E402

PEER_PINS = {
    MXNET_PY: ["mxnet==1.9.1", "numpy==1.23.5", "opencv-python-headless==4.8.1.78"],
    DALI_PY: ["nvidia-dali-cuda130==2.4.0", "numpy==2.2.6"],
    SIMD_PY: ["pillow-simd==12.1.1.post0"],  # built from source: needs a C compiler
}


def setup_peers() -> None:
    for python, pins in PEER_PINS.items():
        venv = python.parents[1]
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pins], check=True)


# ---- data -----------------------------------------------------------------------------------

def build_sets(work: Path, images: int) -> dict[str, dict]:
    """Both image sets as folders, packed by im2rec and by ``train.tools pack``."""
    sets = {}
    for name, classes, mixed in (("rec", [f"class{i}" for i in range(10)], False),
                                 ("folder", [f"{i:03d}.breed_{i}" for i in range(1, 134)],
                                  True)):
        root = work / name / "train"
        start = time.perf_counter()
        sizes = write_photo_folder(root, images, classes, mixed_sizes=mixed)
        total = sum(p.stat().st_size for p in root.rglob("*.jpg"))
        print(f"{name}: {images} JPEGs, {total / images / 1000:.1f} KB average, made in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        mx_prefix, ours_prefix = work / name / "mxnet", work / name / "ours"
        im2rec = [str(MXNET_PY), "-m", "mxnet.tools.im2rec"]
        subprocess.run([*im2rec, "--list", "--recursive", str(mx_prefix), str(root)],
                       check=True, capture_output=True)
        subprocess.run([*im2rec, "--pass-through", "--num-thread", "1", str(mx_prefix),
                        str(root)], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "train.tools", "pack", str(root),
                        str(ours_prefix), "--lst", f"{mx_prefix}.lst"], check=True,
                       capture_output=True, cwd=REPO)
        sets[name] = {
            "root": root, "rec": f"{mx_prefix}.rec", "idx": f"{mx_prefix}.idx",
            "lst": f"{mx_prefix}.lst", "images": images, "classes": len(classes),
            "average_kb": round(total / images / 1000, 1),
            "sizes": sorted({f"{w}x{h}" for w, h in sizes}),
            "pack_identical": filecmp.cmp(f"{mx_prefix}.rec", f"{ours_prefix}.rec",
                                          shallow=False),
        }
    return sets


# ---- peers ----------------------------------------------------------------------------------

def run_peer(python: Path, script: str, args: list[str]) -> float:
    result = subprocess.run([str(python), str(BENCH / script), *args, "--epochs", str(EPOCHS),
                             "--batch", str(BATCH), "--size", str(SIZE)],
                            check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["images_per_s"]


def peers(data: dict) -> list[dict]:
    rows = []
    rec = ["--rec", data["rec"], "--idx", data["idx"]]
    for threads in (1, 2):
        rows.append(row("MXNet ImageRecordIter (.rec by im2rec)", f"{threads} threads",
                        run_peer(MXNET_PY, "mxnet_peer.py", [*rec, "--threads",
                                                             str(threads)]), peer=True))
    if data["name"] == "folder":
        rows.append(row("MXNet ImageIter (image files through im2rec's .lst)", "1 thread",
                        run_peer(MXNET_PY, "mxnet_peer.py",
                                 ["--lst", data["lst"], "--root", str(data["root"])]),
                        peer=True))
    source = rec if data["name"] == "rec" else ["--folder", str(data["root"])]
    for threads in (1, 2):
        rows.append(row("NVIDIA DALI, CPU backend", f"{threads} threads",
                        run_peer(DALI_PY, "dali_peer.py", [*source, "--threads",
                                                           str(threads)])))
    return rows


# ---- ours -----------------------------------------------------------------------------------

def spec() -> InputSpec:
    return InputSpec(3, SIZE, SIZE, SIZE, IMAGENET_MEAN, IMAGENET_STD)


def float_transform() -> Callable:
    """The previous pipeline's ``crop`` transform: float32 normalized in the workers."""
    return v2.Compose([v2.ToImage(), v2.Resize(SIZE, antialias=True),
                       v2.RandomCrop((SIZE, SIZE), pad_if_needed=True),
                       v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD))])


def timed_epochs(epoch_batches: Callable[[int], Iterable[Batch]]) -> float:
    rates = []
    for epoch in range(EPOCHS + 1):
        start = time.perf_counter()
        images = 0
        for batch in epoch_batches(epoch):
            batch.model_input(CPU, channels_last=False)
            images += batch.size
        if epoch:  # the first epoch warms the page cache and the code paths
            rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates)


def loader_rate(reader: Reader, workers: int, transform: Callable | None = None) -> float:
    """As a job runs it: ``make_loader`` every epoch (which keeps one loader and its workers)."""
    dataset = ImageDataset(reader, transform or train_transform(spec(), "crop"), seed=0)
    sampler = EpochSampler(len(dataset), shuffle=True, seed=0)
    split = Split("bench", dataset, sampler)

    def batches(epoch: int) -> Iterable[Batch]:
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        return make_loader(split, BATCH, workers, False)

    rate = timed_epochs(batches)
    stop_workers(split)
    return rate


def fresh_workers_rate(reader: Reader, workers: int) -> float:
    """A new loader, so new worker processes, every epoch (the loader before issue 17)."""
    dataset = ImageDataset(reader, train_transform(spec(), "crop"), seed=0)
    sampler = EpochSampler(len(dataset), shuffle=True, seed=0)
    collate = functools.partial(Batch, normalization=dataset.normalization)

    def batches(epoch: int) -> Iterable[Batch]:
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_size=BATCH, sampler=sampler, num_workers=workers,
                          collate_fn=collate)

    return timed_epochs(batches)


def thread_rate(reader: Reader, threads: int) -> float:
    """Decoding in threads of the training process instead of worker processes.

    Each thread gets its own copy of the dataset (a reader's open file is not shareable);
    the augmentation draws from torch's one global generator, which threads share, so this
    variant is not repeatable: it is measured for speed only.
    """
    dataset = ImageDataset(reader, train_transform(spec(), "crop"), seed=0)
    sampler = EpochSampler(len(dataset), shuffle=True, seed=0)
    local = threading.local()

    def sample(index: int):
        if not hasattr(local, "dataset"):
            local.dataset = copy.deepcopy(dataset)
        return local.dataset[index]

    def batches(epoch: int) -> Iterator[Batch]:
        sampler.set_epoch(epoch)
        order = list(sampler)
        with ThreadPoolExecutor(threads) as pool:
            samples = pool.map(sample, order)
            for start in range(0, len(order), BATCH):
                chunk = order[start:start + BATCH]
                yield Batch([next(samples) for _ in chunk], dataset.normalization)

    return timed_epochs(batches)


def ours(data: dict) -> list[dict]:
    if data["name"] == "rec":
        reader: Reader = RecordFileReader(Path(data["rec"]).parent, "train", LabelSpec())
        name = "ours: RecordFileReader"
    else:
        reader = ImageFolderReader(data["root"], "train")
        name = "ours: ImageFolderReader"
    rows = [row(f"{name}, uint8 + simplejpeg (the job's pipeline)", f"{n} workers",
                loader_rate(reader, n), ours=True) for n in (0, 1, 2, 3, 4)]
    rows.append(row(f"{name}, new worker processes every epoch", "2 workers",
                    fresh_workers_rate(reader, 2), ours=True))
    rows.append(row(f"{name}, decoding in threads of the training process", "2 threads",
                    thread_rate(reader, 2), ours=True))
    rows.append(row(f"{name}, Pillow decoding instead of simplejpeg", "2 workers",
                    without_simplejpeg(lambda: loader_rate(reader, 2)), ours=True))
    for n in (0, 2):
        rows.append(row(f"{name}, float32 from the workers, Pillow (the previous pipeline)",
                        f"{n} workers",
                        without_simplejpeg(lambda n=n: loader_rate(reader, n,
                                                                   float_transform())),
                        ours=True))
    return rows


def row(pipeline: str, parallelism: str, rate: float, *, peer: bool = False,
        ours: bool = False) -> dict:
    print(f"  {pipeline:70s} {parallelism:10s} {rate:8.1f} images/s", flush=True)
    return {"pipeline": pipeline, "parallelism": parallelism, "images_per_s": round(rate, 1),
            "peer": peer, "ours": ours}


# ---- report ---------------------------------------------------------------------------------

def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Training input pipeline vs. MXNet's ImageRecordIter (CPU)", "",
        f"Measured {result['date']} in one run of `bench/data_peers.py` on {m['cpus']} CPU "
        f"cores ({m['processor']}), {m['platform']}, Python {m['python']}, torch "
        f"{m['torch']}, under the exclusive CPU lock (load average at start "
        f"{m['load_average']}). Work per image, for every row: decode, resize the shorter "
        f"side to {SIZE}, random {SIZE}x{SIZE} crop, random horizontal flip, normalize "
        f"(ImageNet mean/std), float32 NCHW batches of {BATCH}. Median of {EPOCHS} epochs "
        "after a warm-up epoch. MXNet caps `preprocess_threads` at max(cores / 2 - 1, 1), "
        "so on 2 cores it decodes with 1 thread whatever it is given. No GPU on this "
        "machine: DALI's GPU (nvJPEG) path is not measured.", ""]
    for data in result["sets"]:
        rows = data["rows"]
        best_peer = max(r["images_per_s"] for r in rows if r["peer"])
        job = max((r for r in rows if r["ours"] and "job's pipeline" in r["pipeline"]),
                  key=lambda r: r["images_per_s"])
        lines += [f"## {data['title']}", "",
                  f"{data['images']} JPEGs ({data['average_kb']} KB average; sizes "
                  f"{', '.join(data['sizes'])}), {data['classes']} classes. "
                  f"`train.tools pack` output byte-identical to im2rec's: "
                  f"{'yes' if data['pack_identical'] else 'NO'}.", "",
                  f"**Ours ({job['parallelism']}) / best MXNet: "
                  f"{job['images_per_s'] / best_peer:.2f}x**", "",
                  "| pipeline | threads / workers | images/s | vs. best MXNet |",
                  "| --- | --- | ---: | ---: |"]
        for r in rows:
            lines.append(f"| {r['pipeline']} | {r['parallelism']} | {r['images_per_s']:.1f} "
                         f"| {r['images_per_s'] / best_peer:.2f}x |")
        lines.append("")
    lines += ["## What each means costs per image (one process, one thread)", "",
              "| image | means | ms per image |", "| --- | --- | ---: |"]
    lines += [f"| {r['image']} | {r['means']} | {r['ms_per_image']:.3f} |"
              for r in result["micro"]]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="create the peers' venvs, exit")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if args.setup:
        setup_peers()
        return
    missing = [str(p) for p in PEER_PINS if not p.exists()]
    if missing:
        sys.exit(f"peer venvs missing ({', '.join(missing)}): run {sys.argv[0]} --setup")
    load = [round(v, 2) for v in os.getloadavg()]
    torch.set_num_threads(1)  # the consumer only normalizes; the cores are the workers'
    sets = []
    with tempfile.TemporaryDirectory() as tmp:
        built = build_sets(Path(tmp), args.images)
        for name, title in (("rec", "RecordIO: the same .rec, made by MXNet's im2rec"),
                            ("folder", "Image folders: dog-breed layout, photo-sized JPEGs")):
            data = {**built[name], "name": name}
            print(title, flush=True)
            rows = peers(data) + ours(data)
            sets.append({"name": name, "title": title, "rows": rows,
                         **{k: data[k] for k in ("images", "classes", "average_kb", "sizes",
                                                 "pack_identical")}})
        print("per-image costs", flush=True)
        micro = micro_costs(Path(tmp))
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "processor": cpu_model(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "load_average": load},
        "batch_size": BATCH, "crop": SIZE, "epochs": EPOCHS, "sets": sets, "micro": micro,
    }
    save(result, args.out / "data_peers", to_markdown)


if __name__ == "__main__":
    main()
