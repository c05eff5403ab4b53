#!/usr/bin/env python3
"""Per-image decode and resize costs of whichever Pillow this interpreter has; run by
bench/means_costs.py (for bench/data_peers.py) with the project's venv (Pillow) and with
bench/.venv-simd (pillow-simd, built there from source: it replaces Pillow, so it cannot
share a venv). Prints one JSON object.

    bench/.venv-simd/bin/python bench/pillow_simd_probe.py FILE.jpg [FILE.jpg ...]
"""

from __future__ import annotations

import io
import json
import sys
import time

from PIL import Image


def per_image_ms(fn, items: list, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter() - start) / len(items))
    return round(best * 1e3, 3)


def main() -> None:
    datas = [open(path, "rb").read() for path in sys.argv[1:]]  # noqa: SIM115
    images = [Image.open(io.BytesIO(d)).convert("RGB") for d in datas]

    def decode(data: bytes) -> None:
        Image.open(io.BytesIO(data)).convert("RGB")

    def resize(image: Image.Image) -> None:  # shorter side to 224, antialiased bilinear
        w, h = image.size
        image.resize((round(w * 224 / min(w, h)), round(h * 224 / min(w, h))),
                     Image.BILINEAR)

    print(json.dumps({"pillow": Image.__version__, "decode_ms": per_image_ms(decode, datas),
                      "resize_ms": per_image_ms(resize, images)}))


if __name__ == "__main__":
    main()
