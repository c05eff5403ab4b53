#!/usr/bin/env python3
"""The peer: MXNet 1.9.1's ``ImageRecordIter`` (and ``mx.image.ImageIter`` for image files),
run by bench/data_peers.py in MXNet's own venv (bench/.venv-mxnet); never imported by the
project. Prints one JSON object.

Settings are the ones SageMaker's built-in algorithm documents for ``augmentation_type=crop``
and ours use: resize the shorter side to 224, random 224x224 crop, random mirror, normalize with
ImageNet's mean/std (0-255 scale), float32 NCHW batches of 32, shuffled.

    bench/.venv-mxnet/bin/python bench/mxnet_peer.py --rec X.rec --idx X.idx --threads 1
    bench/.venv-mxnet/bin/python bench/mxnet_peer.py --lst X.lst --root DIR --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def record_iter(args: argparse.Namespace):
    import mxnet as mx

    return mx.io.ImageRecordIter(
        path_imgrec=args.rec, path_imgidx=args.idx, data_shape=(3, args.size, args.size),
        batch_size=args.batch, resize=args.size, rand_crop=True, rand_mirror=True,
        mean_r=MEAN[0], mean_g=MEAN[1], mean_b=MEAN[2],
        std_r=STD[0], std_g=STD[1], std_b=STD[2],
        shuffle=True, seed=0, preprocess_threads=args.threads, round_batch=False)


def image_iter(args: argparse.Namespace):
    import mxnet as mx

    augmenters = mx.image.CreateAugmenter(
        data_shape=(3, args.size, args.size), resize=args.size, rand_crop=True,
        rand_mirror=True, mean=mx.nd.array(MEAN), std=mx.nd.array(STD))
    return mx.image.ImageIter(
        batch_size=args.batch, data_shape=(3, args.size, args.size), path_imglist=args.lst,
        path_root=args.root, shuffle=True, aug_list=augmenters, last_batch_handle="discard")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rec")
    parser.add_argument("--idx")
    parser.add_argument("--lst")
    parser.add_argument("--root")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    it = record_iter(args) if args.rec else image_iter(args)
    rates = []
    for epoch in range(args.epochs + 1):  # the first epoch warms up
        it.reset()
        start = time.perf_counter()
        images = 0
        for batch in it:
            batch.data[0].wait_to_read()
            images += batch.data[0].shape[0] - batch.pad
        if epoch:
            rates.append(images / (time.perf_counter() - start))
    print(json.dumps({"images_per_s": statistics.median(rates), "epochs": rates,
                      "images": images}))


if __name__ == "__main__":
    main()
