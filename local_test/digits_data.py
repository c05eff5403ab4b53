#!/usr/bin/env python3
"""Build the demo dataset: scikit-learn's bundled handwritten digits as image folders.

``load_digits`` ships 1,797 real 8x8 grayscale digits (UCI ML repository) inside the package,
so no download is needed. Each is upscaled to 32x32 RGB PNG and split, stratified and seeded,
into train / validation / test folders of the layout ``<split>/<digit>/<index>.png``.

    python local_test/digits_data.py OUT_DIR [--size 32] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

SPLITS = {"train": 0.70, "validation": 0.15, "test": 0.15}


def build(out_dir: Path, size: int = 32, seed: int = 0) -> dict[str, int]:
    """Write the three splits under ``out_dir``; returns the number of images per split."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(SPLITS, 0)
    for label in range(10):
        indices = np.flatnonzero(digits.target == label)
        rng.shuffle(indices)
        n_train = round(len(indices) * SPLITS["train"])
        n_val = round(len(indices) * SPLITS["validation"])
        parts = {
            "train": indices[:n_train],
            "validation": indices[n_train : n_train + n_val],
            "test": indices[n_train + n_val :],
        }
        for split, members in parts.items():
            folder = out_dir / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for index in members:
                pixels = (digits.images[index] * (255.0 / 16.0)).astype(np.uint8)
                image = Image.fromarray(pixels, mode="L").resize((size, size), Image.BICUBIC)
                image.convert("RGB").save(folder / f"{index:04d}.png")
            counts[split] += len(members)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = build(args.out_dir, args.size, args.seed)
    print(" ".join(f"{split}={n}" for split, n in counts.items()), "images in", args.out_dir)


if __name__ == "__main__":
    main()
