#!/usr/bin/env python3
"""Post every image under a labelled folder (``<class>/<image>``) to a running endpoint.

Works against the local server (``serve``) exactly like a notebook calls a SageMaker endpoint:
``Content-Type: application/x-image``, then ``np.argmax(json.loads(response))``.

    python local_test/predict_folder.py local_test/heldout [--url http://127.0.0.1:8080]
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def predict(url: str, data: bytes) -> list[float]:
    request = urllib.request.Request(
        f"{url}/invocations", data=data, method="POST",
        headers={"Content-Type": "application/x-image", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait_until_healthy(url: str, seconds: float) -> None:
    """Poll GET /ping until it answers 200 (the model is loaded and warmed up)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url}/ping did not answer 200 within {seconds:.0f} s")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--show", type=int, default=5, help="print this many predictions")
    parser.add_argument("--wait", type=float, default=0,
                        help="first wait up to this many seconds for /ping to answer 200")
    args = parser.parse_args()
    if args.wait:
        wait_until_healthy(args.url, args.wait)

    images = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise SystemExit(f"no images under {args.folder}")
    correct = 0
    for i, path in enumerate(images):
        probabilities = predict(args.url, path.read_bytes())
        predicted = max(range(len(probabilities)), key=probabilities.__getitem__)
        truth = path.parent.name
        correct += str(predicted) == truth
        if i < args.show:
            print(f"{path.relative_to(args.folder)}: predicted {predicted} "
                  f"(p={probabilities[predicted]:.3f}), true {truth}")
    print(f"held-out accuracy through the endpoint: {correct}/{len(images)} "
          f"({100 * correct / len(images):.1f}%)")


if __name__ == "__main__":
    main()
