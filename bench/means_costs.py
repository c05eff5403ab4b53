"""What each candidate means of the training input pipeline costs per image, in milliseconds,
one process, one thread: decoders (Pillow, Pillow's ``draft()``, simplejpeg with and without
DCT scaling, pillow-simd in its own venv), resizes and per-sample seeding. The table of
bench/data_peers.py's results that explains its rows; also ``without_simplejpeg``, the
switch that measures our pipeline with Pillow decoding."""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from photos import photo_jpeg  # bench/ (the running script's folder)
from PIL import Image
from pillow_simd_probe import per_image_ms
from torchvision.transforms import v2

from train.data import decode

BENCH = Path(__file__).resolve().parent
SIMD_PY = BENCH / ".venv-simd/bin/python"
SIZE = 224  # the crop of bench/data_peers.py; pillow_simd_probe.py resizes to it too


def without_simplejpeg(measure: Callable[[], float]) -> float:
    saved, decode.simplejpeg = decode.simplejpeg, None  # workers fork with this state
    try:
        return measure()
    finally:
        decode.simplejpeg = saved


def _pil_draft(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    w, h = image.size
    image.draft("RGB", (w * SIZE // min(w, h), h * SIZE // min(w, h)))  # 1/2, 1/4, 1/8 only
    image.convert("RGB")


def _torch_resize(pixels: np.ndarray) -> None:
    v2.functional.resize(torch.from_numpy(pixels).permute(2, 0, 1), [SIZE], antialias=True)


def _seed_all(_: object) -> None:
    torch.manual_seed(12345)


def _seed_cpu(_: object) -> None:
    torch.default_generator.manual_seed(12345)


def micro_costs(work: Path) -> list[dict]:
    """What each candidate means costs per image, in milliseconds."""
    rng = np.random.default_rng(1)
    rows = []
    for width, height in ((500, 375), (1024, 768)):
        files = []
        for n in range(30):
            path = work / "micro" / f"{width}x{height}_{n}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(photo_jpeg(rng, width, height))
            files.append(path)
        datas = [p.read_bytes() for p in files]
        pixels = [decode.decode_rgb(d) for d in datas]
        costs = {
            "Pillow decode": without_simplejpeg(
                functools.partial(per_image_ms, decode.decode_rgb, datas)),
            "Pillow decode with draft() (DCT scaling by 1/2, 1/4, 1/8)":
                per_image_ms(_pil_draft, datas),
            "simplejpeg decode": per_image_ms(decode.decode_rgb, datas),
            "simplejpeg decode, DCT-scaled to >= 224 when >= 2x (ours)":
                per_image_ms(lambda d: decode.decode_rgb(d, SIZE), datas),
            "resize to 224: torch uint8 antialiased, channels-last view (ours)":
                per_image_ms(_torch_resize, pixels),
        }
        for label, python in (("Pillow", sys.executable), ("pillow-simd", SIMD_PY)):
            if Path(python).exists():
                probe = subprocess.run([str(python), str(BENCH / "pillow_simd_probe.py"),
                                        *map(str, files)], capture_output=True, text=True,
                                       check=True)
                got = json.loads(probe.stdout)
                costs[f"resize to 224: {label} {got['pillow']} (bilinear)"] = got["resize_ms"]
                if label == "pillow-simd":
                    costs[f"decode: pillow-simd {got['pillow']} (system libjpeg-turbo)"] = (
                        got["decode_ms"])
        costs["seed a sample: torch.manual_seed (every backend)"] = per_image_ms(_seed_all, datas)
        costs["seed a sample: the CPU generator only (ours)"] = per_image_ms(_seed_cpu, datas)
        for means, ms in costs.items():
            rows.append({"image": f"{width}x{height}", "means": means, "ms_per_image": ms})
            print(f"  {width}x{height} {means:70s} {ms:7.3f} ms", flush=True)
    return rows
