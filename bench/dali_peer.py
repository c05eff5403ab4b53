#!/usr/bin/env python3
"""NVIDIA DALI's CPU pipeline on the peer bench's data; run by bench/data_peers.py in DALI's own
venv (bench/.venv-dali), never imported by the project. Prints one JSON object.

Same work as ours and MXNet's: decode, resize the shorter side to 224, random 224x224 crop,
random horizontal flip, normalize with ImageNet's mean/std, float32 CHW batches of 32.

    bench/.venv-dali/bin/python bench/dali_peer.py --rec X.rec --idx X.idx --threads 2
    bench/.venv-dali/bin/python bench/dali_peer.py --folder ROOT --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


def build(args: argparse.Namespace):
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=args.batch, num_threads=args.threads, device_id=None, seed=0,
                  prefetch_queue_depth=2)
    def pipe():
        if args.rec:
            jpegs, labels = fn.readers.mxnet(path=[args.rec], index_path=[args.idx],
                                             random_shuffle=True, name="reader")
        else:
            jpegs, labels = fn.readers.file(file_root=args.folder, random_shuffle=True,
                                            name="reader")
        images = fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
        images = fn.resize(images, resize_shorter=args.size, antialias=True)
        images = fn.crop_mirror_normalize(
            images, crop=(args.size, args.size), crop_pos_x=fn.random.uniform(range=(0, 1)),
            crop_pos_y=fn.random.uniform(range=(0, 1)), mirror=fn.random.coin_flip(),
            mean=MEAN, std=STD, dtype=types.FLOAT, output_layout="CHW")
        return images, labels

    p = pipe()
    p.build()
    return p


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rec")
    parser.add_argument("--idx")
    parser.add_argument("--folder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    p = build(args)
    size = p.epoch_size("reader")
    batches = -(-size // args.batch)
    rates = []
    for epoch in range(args.epochs + 1):  # the first epoch warms up
        start = time.perf_counter()
        images = 0
        for _ in range(batches):
            out, _labels = p.run()
            images += len(out)
        if epoch:
            rates.append(images / (time.perf_counter() - start))
    print(json.dumps({"images_per_s": statistics.median(rates), "epochs": rates,
                      "images": size}))


if __name__ == "__main__":
    main()
